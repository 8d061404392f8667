" Vim syntax file
" Language:    mdl (model files of the mdl compiler, *.mdl)
" Maintainer:  the mdl project (contrib/README.md)
"
" The word lists below are checked against the compiler by
" tests/contrib/check_syntax.py: the statement keywords and type words of
" frontend/lex.l, the constants of frontend/lower.c, the builtins of
" frontend/builtins.c and the functions of frontend/prelude.mdl.  Keep each
" list on its one line so the test can read it.
"
" As in the lexer, keywords are contextual: a statement keyword counts only
" where a statement starts and not before '=' or ',' (so `target = y` and
" `loss, acc = f(x)` bind names), and a type word only after ':' (so
" `float(x)` is a call).

if exists("b:current_syntax")
  finish
endif

let s:cpo_save = &cpo
set cpo&vim

syn keyword mdlTodo contained TODO FIXME XXX NOTE
syn match mdlComment "#.*$" contains=mdlTodo,@Spell

" statement keywords
syn match mdlStatement "\%(^\|{\)\s*\zs\<\%(fn\|model\|input\|target\|param\|loss\|metric\|output\|train\|state\|update\|hyper\)\>\%(\s*\%(=\%(=\)\@!\|,\)\)\@!"
" the name a definition introduces: fn NAME, model NAME, param NAME, ...
syn match mdlFunctionName "\%(\%(^\|{\)\s*fn\s\+\)\@<=\h\w*"
syn match mdlDefinedName "\%(\%(^\|{\)\s*\%(model\|input\|target\|param\|metric\|output\|state\|update\|hyper\)\s\+\)\@<=\h\w*"

" types, after ':'
syn match mdlType ":\s*\zs\<\%(f32\|i32\|int\|float\)\>"

" constants
syn keyword mdlConstant true false pi

" functions: called with '(' (float and int are types after ':')
syn match mdlBuiltin "\<\%(exp\|log\|sqrt\|abs\|sign\|tanh\|sigmoid\|relu\|where\|sum\|mean\|max\|min\|float\|int\|reshape\|erf\|stop_gradient\|one_hot\|argmax\|transpose\|slice\|concat\|gather\|conv\|flatten\|max_pool2d\|avg_pool2d\|dropout\|arange\|positions\|kv_cache\|scan\)\ze\s*("
syn match mdlLibrary "\<\%(mse\|mae\|huber\|logsumexp\|log_softmax\|softmax\|cross_entropy\|sparse_cross_entropy\|label_smoothing_cross_entropy\|focal_loss\|accuracy\|binary_cross_entropy\|softplus\|leaky_relu\|elu\|silu\|gelu\|clip\|l1\|l2\|elastic_net\|dense\|conv2d\|max_pool\|avg_pool\|embedding\|dense_seq\|lstm_cell\|lstm_step\|lstm\|gru_cell\|gru_step\|gru\|linear\|layer_norm\|position_embedding\|split_heads\|merge_heads\|causal_attention\|self_attention\|transformer_block\)\ze\s*("

" numbers: 3, 2.5, .5, 1e-3, 2.5E+4 (not the 1 of a parameter name logits.1.W)
syn match mdlNumber "\%(\w\|\.\)\@<!\d\+\%(\.\d*\)\=\%([eE][+-]\=\d\+\)\="
syn match mdlNumber "\%(\w\|\.\)\@<!\.\d\+\%([eE][+-]\=\d\+\)\="

syn match mdlOperator "==\|!=\|<=\|>=\|[-+*/@^<>=]"
syn match mdlEllipsis "\.\.\."

hi def link mdlTodo         Todo
hi def link mdlComment      Comment
hi def link mdlStatement    Statement
hi def link mdlFunctionName Function
hi def link mdlDefinedName  Identifier
hi def link mdlType         Type
hi def link mdlConstant     Constant
hi def link mdlBuiltin      Function
hi def link mdlLibrary      Function
hi def link mdlNumber       Number
hi def link mdlOperator     Operator
hi def link mdlEllipsis     Operator

let b:current_syntax = "mdl"

let &cpo = s:cpo_save
unlet s:cpo_save
