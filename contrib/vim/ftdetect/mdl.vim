" *.mdl files are mdl models (set, not setf: Vim may have guessed another
" language for the extension already).
autocmd BufRead,BufNewFile *.mdl set filetype=mdl
