/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* memprof-bpf kernelspec install: kernels that start with the recorder. */
#ifndef MEMPROF_KERNELSPEC_H
#define MEMPROF_KERNELSPEC_H

/* argv[0] is "kernelspec". The exit code: 0, or 2 with one line said. */
int kernelspec__main(int argc, char **argv);

#endif
