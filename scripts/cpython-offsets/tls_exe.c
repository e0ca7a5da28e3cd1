/* tls_exe.c: check the x86-64 variant-II static-TLS formula for a variable
 * defined in the *executable* (what a Python 3.12+ built without
 * --enable-shared would use for _Py_tss_tstate):
 *   &var == fsbase - roundup(PT_TLS.p_memsz, PT_TLS.p_align) + st_value(var)
 * cc -O0 -no-pie tls_exe.c -o tls_exe && ./tls_exe
 */
#include <stdio.h>
#include <asm/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>
__thread char pad[40] = {1};
__thread void *tstate_like = (void *)0x1234;
int main(void) {
    unsigned long fs; syscall(SYS_arch_prctl, ARCH_GET_FS, &fs);
    printf("fsbase=%#lx &tstate_like=%#lx fsbase-&var=%ld\n", fs, (unsigned long)&tstate_like,
           (long)(fs - (unsigned long)&tstate_like));
    return 0;
}
