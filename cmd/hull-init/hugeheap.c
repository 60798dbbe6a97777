// See hugeheap.go.
#include <string.h>

int hull_hugeheap_end(void); // internal/hugeheap

static void __attribute__((constructor)) hull_init_hugeheap(int argc, char **argv)
{
	if (argc < 2 || strcmp(argv[1], "init") != 0)
		hull_hugeheap_end();
}
