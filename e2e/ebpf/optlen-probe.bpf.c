// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Test helper for e2e/ebpf/getsockopt.test.ts, attached to the pod cgroup after weft's
 * getsockopt program: records the optlen each getsockopt hands to the next program, keyed
 * by (proxy uid?, level, optname). optlen 0 means weft gave the buffer back to the kernel. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __s32);
} seen SEC(".maps");

SEC("cgroup/getsockopt")
int optlen_probe(struct bpf_sockopt *ctx)
{
	__u32 key = ((__u32)ctx->level << 16) | ((__u32)ctx->optname & 0xffff);
	__s32 optlen = ctx->optlen;

	if ((__u32)bpf_get_current_uid_gid() == 1337)
		key |= 1u << 31;
	bpf_map_update_elem(&seen, &key, &optlen, BPF_ANY);
	/* Hand big buffers back too, or kernels before 6.5 would fail the call here. */
	if (optlen > 4096)
		ctx->optlen = 0;
	return 1;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
