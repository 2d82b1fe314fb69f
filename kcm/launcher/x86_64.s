# The kcm command of the self-contained bundle, for x86_64 Linux: no libc, no
# compiler needed on the machine that builds a bundle (kcm.bundle ships the assembled
# file, kcm/launcher/x86_64; tests/unit/test_launcher.py re-assembles this source and
# compares). It does what launcher.c does:
#
#   <dir of /proc/self/exe>/runtime/lib/ld-linux-x86-64.so.2 --library-path
#       <dir>/runtime/lib <dir>/runtime/bin/python3 -I -S -c MAIN ARGV0 ARGS...
#
# (ARGV0, the name it was run by, tells kcm from cmk: kcm.cli.launched)
#
# with the environment passed through untouched. Build:
#   as --64 -o x86_64.o x86_64.s && ld -static -nostdlib -s -z noseparate-code -o x86_64 x86_64.o
        .intel_syntax noprefix
        .set SYS_write, 1
        .set SYS_execve, 59
        .set SYS_exit, 60
        .set SYS_readlink, 89
        .set PATH_SIZE, 4096
        .set MAX_ARGS, 1048576
        .set FIXED_ARGS, 8

        .text
        .globl _start
_start:
        mov     r12, rsp                        # [r12] = argc, then argv, NULL, envp
        mov     eax, SYS_readlink
        lea     rdi, [rip + proc_self_exe]
        lea     rsi, [rip + self_path]
        mov     edx, PATH_SIZE - 1
        syscall
        test    rax, rax
        jle     no_self
        mov     rcx, rax
        lea     rsi, [rip + self_path]
find_slash:                                     # rcx = index of the last '/'
        dec     rcx
        js      no_self
        cmp     byte ptr [rsi + rcx], '/'
        jne     find_slash
        mov     r13, rcx                        # r13 = length of the bundle's directory

        lea     rbx, [rip + paths]              # each path: the directory, then its tail
        mov     r15d, 3
build_paths:
        mov     rdi, [rbx]
        call    copy_dir
        mov     rsi, [rbx + 8]
        call    copy_string
        add     rbx, 16
        dec     r15d
        jnz     build_paths

        mov     rbx, [r12]                      # argc
        cmp     rbx, MAX_ARGS
        ja      too_many
        lea     rdi, [rip + new_argv]
        lea     rsi, [rip + fixed_args]
        mov     ecx, FIXED_ARGS
        rep movsq                               # loader ... -c MAIN; rdi after them
        lea     rsi, [r12 + 8]                  # argv[0] (kcm or cmk: MAIN reads it)
        mov     rcx, rbx
        test    rcx, rcx
        jle     arguments_done
copy_arguments:
        mov     rax, [rsi]
        mov     [rdi], rax
        add     rsi, 8
        add     rdi, 8
        dec     rcx
        jnz     copy_arguments
arguments_done:
        mov     qword ptr [rdi], 0
        lea     rdx, [r12 + rbx * 8 + 16]       # envp, after argv's NULL
        mov     eax, SYS_execve
        lea     rdi, [rip + loader_path]
        lea     rsi, [rip + new_argv]
        syscall
        lea     rsi, [rip + cannot_run]
        mov     edx, cannot_run_end - cannot_run
        mov     r14d, 127
        jmp     fail
no_self:
        lea     rsi, [rip + cannot_find]
        mov     edx, cannot_find_end - cannot_find
        mov     r14d, 1
        jmp     fail
too_many:
        lea     rsi, [rip + too_many_arguments]
        mov     edx, too_many_arguments_end - too_many_arguments
        mov     r14d, 1
fail:                                           # write(2, rsi, rdx); exit(r14)
        mov     eax, SYS_write
        mov     edi, 2
        syscall
        mov     eax, SYS_exit
        mov     edi, r14d
        syscall

copy_dir:                                       # copy r13 bytes of self_path to rdi
        lea     rsi, [rip + self_path]
        mov     rcx, r13
        rep movsb
        ret
copy_string:                                    # copy the string at rsi (with its NUL)
        lodsb
        stosb
        test    al, al
        jnz     copy_string
        ret

        .section .rodata
        .align 8
paths:          .quad loader_path, loader_tail, library_path, library_tail
                .quad python_path, python_tail
fixed_args:     .quad loader_path, library_option, library_path, python_path
                .quad isolated_option, no_site_option, command_option, main_code
proc_self_exe:  .asciz "/proc/self/exe"
loader_tail:    .asciz "/runtime/lib/ld-linux-x86-64.so.2"
library_tail:   .asciz "/runtime/lib"
python_tail:    .asciz "/runtime/bin/python3"
library_option: .asciz "--library-path"
isolated_option: .asciz "-I"
no_site_option: .asciz "-S"
command_option: .asciz "-c"
main_code:      .asciz "import sys\nfrom kcm.cli import launched\nsys.exit(launched())\n"
cannot_find:    .ascii "kcm: cannot find the kcm bundle from /proc/self/exe\n"
cannot_find_end:
cannot_run:     .ascii "kcm: cannot run the bundle's runtime/lib/ld-linux-x86-64.so.2\n"
cannot_run_end:
too_many_arguments: .ascii "kcm: too many arguments\n"
too_many_arguments_end:

        .bss
        .align 16
self_path:      .skip PATH_SIZE
loader_path:    .skip PATH_SIZE + 64
library_path:   .skip PATH_SIZE + 64
python_path:    .skip PATH_SIZE + 64
new_argv:       .skip (MAX_ARGS + FIXED_ARGS + 1) * 8
        .section .note.GNU-stack, "", @progbits
