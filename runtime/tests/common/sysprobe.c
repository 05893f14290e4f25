/* seccomp probe: makes one raw system call and prints what the kernel (or the filter) said.
 *   sysprobe NR [ARG...]   prints "NR ret=R" or "NR errno=E"; an ARG that parses as a number
 *                          (decimal, 0x hex, negative) is passed as one, any other as a string.
 *   sysprobe thread NR     makes the call in a second thread, joins it, prints "survived"
 *                          (SCMP_ACT_KILL_THREAD kills that thread only).
 * Built static by the tests (gcc -static -pthread) and run inside the container. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static long arg(const char *s)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 0);
	if (errno == 0 && *s && *end == '\0')
		return v;
	return (long)s;
}

static void *in_thread(void *nr)
{
	syscall((long)nr, 0, 0, 0, 0, 0, 0);
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "thread") == 0) {
		pthread_t t;
		if (pthread_create(&t, NULL, in_thread, (void *)strtol(argv[2], NULL, 0)) != 0)
			return 2;
		pthread_join(t, NULL);
		printf("survived\n");
		return 0;
	}
	if (argc < 2 || argc > 8) {
		fprintf(stderr, "usage: sysprobe NR [ARG...] | sysprobe thread NR\n");
		return 2;
	}
	long a[6] = {0};
	for (int i = 2; i < argc; i++)
		a[i - 2] = arg(argv[i]);
	long nr = strtol(argv[1], NULL, 0);
	errno = 0;
	long r = syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
	if (r == -1)
		printf("%ld errno=%d\n", nr, errno);
	else
		printf("%ld ret=%ld\n", nr, r);
	return 0;
}
