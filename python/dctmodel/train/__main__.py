from .hostmem import reexec_with_hugepages

reexec_with_hugepages()  # first: the process may start again (glibc reads its tunables at start)

from .cli import main  # noqa: E402

main()
