/* newspec probe: prints, as key=value lines, the kernel attributes of its own process that
 * the runtime-spec 1.2/1.3 settings change, read back with the syscalls that report them.
 * Built static by the tests (gcc -static) and run inside the container. */
#define _GNU_SOURCE
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/personality.h>
#include <sys/syscall.h>
#include <unistd.h>

struct sched_attr_v0 {
	uint32_t size, policy;
	uint64_t flags;
	int32_t nice;
	uint32_t priority;
	uint64_t runtime, deadline, period;
};

int main(void)
{
	struct sched_attr_v0 a = {0};
	if (syscall(SYS_sched_getattr, 0, &a, sizeof(a), 0) == 0)
		printf("sched.policy=%u\nsched.flags=%llu\nsched.nice=%d\nsched.priority=%u\n"
		       "sched.runtime=%llu\nsched.deadline=%llu\nsched.period=%llu\n",
		       a.policy, (unsigned long long)a.flags, a.nice, a.priority,
		       (unsigned long long)a.runtime, (unsigned long long)a.deadline,
		       (unsigned long long)a.period);
	long io = syscall(SYS_ioprio_get, 1 /* IOPRIO_WHO_PROCESS */, 0);
	printf("ioprio.class=%ld\nioprio.level=%ld\n", io >> 13, io & 0xff);
	cpu_set_t set;
	CPU_ZERO(&set);
	if (sched_getaffinity(0, sizeof(set), &set) == 0) {
		printf("affinity=");
		const char *sep = "";
		for (int c = 0; c < CPU_SETSIZE; c++)
			if (CPU_ISSET(c, &set)) {
				printf("%s%d", sep, c);
				sep = ",";
			}
		printf("\n");
	}
	printf("personality=%d\n", personality(0xffffffff));
	int mode = -1;
	unsigned long mask[16] = {0};
	if (syscall(SYS_get_mempolicy, &mode, mask, 16 * 64, 0, 0) == 0)
		printf("mempolicy.mode=%d\nmempolicy.nodes=%lx\n", mode, mask[0]);
	return 0;
}
