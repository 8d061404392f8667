# mpi_lib.sh - what the tests under mpirun share, sourced after their
# arguments are read: fail, the skips (exit 77) without Open MPI or
# Fashion-MNIST, and mpi, which runs mpirun the way every test does.
fail() { echo "FAIL: $*"; exit 1; }
need_mpirun() {
    if ! command -v mpirun > /dev/null; then
        echo "SKIP: no mpirun (apt-get install openmpi-bin libopenmpi-dev)"
        exit 77
    fi
}
need_fashion() {
    if [ ! -f "$1/train-images-idx3-ubyte.gz" ]; then
        echo "SKIP: no Fashion-MNIST in $1 (apt-get install dataset-fashion-mnist)"
        exit 77
    fi
}
# Not bound to cores: on a shared machine a bound rank waits for its core.
mpi() { timeout 300 mpirun --allow-run-as-root --oversubscribe --bind-to none "$@"; }
