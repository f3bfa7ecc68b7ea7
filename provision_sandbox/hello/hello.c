/* A stand-in for Docker Hub's hello-world image, for the sandbox's offline registry.
 *
 * No libc: two raw x86_64 syscalls (write, exit), so the static binary is a few kB and the image
 * is FROM scratch. Build: gcc -Os -static -nostdlib -fno-asynchronous-unwind-tables
 *   -fno-stack-protector -Wl,--build-id=none -s -o hello hello.c
 */
static const char message[] =
    "\n"
    "Hello from Docker!\n"
    "This message shows that your installation appears to be working correctly.\n"
    "(offline stand-in for the hello-world image, served by the provision sandbox's registry)\n";

void _start(void) {
    long ret;
    __asm__ volatile ("syscall" : "=a"(ret) : "a"(1), "D"(1), "S"(message), "d"(sizeof(message) - 1)
                      : "rcx", "r11", "memory");
    __asm__ volatile ("syscall" : : "a"(60), "D"(0) : "rcx", "r11", "memory");
    for (;;) {
    }
}
