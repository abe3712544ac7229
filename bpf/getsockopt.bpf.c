// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* cgroup/getsockopt: answers SO_ORIGINAL_DST (SOL_IP) and IP6T_SO_ORIGINAL_DST (SOL_IPV6)
 * on the proxy's accepted socket from its proxy_orig storage (or, if sockops has not run
 * for it yet, from the `pairs` hand-over), so the proxy asks the same way in every mode.
 * Overrides the kernel's answer: with conntrack loaded it would name the rewritten
 * destination (the proxy itself). Every other getsockopt of the pod runs through this
 * program too, so it filters on cheap context fields before any helper or map, and hands
 * big buffers back to the kernel (see pass_through).
 * Needs: Linux 5.3 (cgroup sockopt, ctx->sk, bpf_sk_storage_get); the pass-through's
 * optlen = 0 convention needs 5.11 (d8fe449a9c51, before it optlen > PAGE_SIZE was EINVAL). */
#include "weft.h"

struct weft_sockaddr_in {
	__u16 family;
	__u16 port; /* network order */
	__u32 addr;
	__u8 zero[8];
};

struct weft_sockaddr_in6 {
	__u16 family;
	__u16 port;
	__u32 flowinfo;
	__u32 addr[4];
	__u32 scope_id;
};

/* The hand-over entry, for a proxy that asks before sockops' PASSIVE_ESTABLISHED ran on its
 * socket (accept can return a child whose ACK is still being processed). */
static __always_inline struct weft_addr *from_pairs(struct bpf_sock *sk)
{
	struct weft_tuple key = {};
	__u32 dport;

	if (sk->family == WEFT_AF_INET) {
		weft_map_v4(key.local_ip, WEFT_LOAD(sk->src_ip4));
		weft_map_v4(key.remote_ip, WEFT_LOAD(sk->dst_ip4));
	} else {
		key.local_ip[0] = WEFT_LOAD(sk->src_ip6[0]);
		key.local_ip[1] = WEFT_LOAD(sk->src_ip6[1]);
		key.local_ip[2] = WEFT_LOAD(sk->src_ip6[2]);
		key.local_ip[3] = WEFT_LOAD(sk->src_ip6[3]);
		key.remote_ip[0] = WEFT_LOAD(sk->dst_ip6[0]);
		key.remote_ip[1] = WEFT_LOAD(sk->dst_ip6[1]);
		key.remote_ip[2] = WEFT_LOAD(sk->dst_ip6[2]);
		key.remote_ip[3] = WEFT_LOAD(sk->dst_ip6[3]);
	}
	key.local_port = (__u16)sk->src_port;
	/* A word load of dst_port works on every kernel (the field was narrowed in 5.17). */
	dport = *(volatile __u32 *)&sk->dst_port;
	key.remote_port = bpf_ntohs((__u16)dport);
	return bpf_map_lookup_elem(&pairs, &key);
}

/* Writes the answer; 0 when the buffer is too small (the kernel's answer stands). */
static __always_inline int answer(struct bpf_sockopt *ctx, const struct weft_addr *orig)
{
	void *optval = ctx->optval, *end = ctx->optval_end;

	if (ctx->level == WEFT_SOL_IP) {
		struct weft_sockaddr_in *sin = optval;

		if (orig->family != WEFT_AF_INET || (void *)(sin + 1) > end)
			return 0;
		sin->family = WEFT_AF_INET;
		sin->port = bpf_htons(orig->port);
		sin->addr = orig->ip[3];
		__builtin_memset(sin->zero, 0, sizeof(sin->zero));
		ctx->optlen = sizeof(*sin);
	} else {
		struct weft_sockaddr_in6 *sin6 = optval;

		if ((void *)(sin6 + 1) > end)
			return 0;
		sin6->family = WEFT_AF_INET6;
		sin6->port = bpf_htons(orig->port);
		sin6->flowinfo = 0;
		sin6->addr[0] = orig->ip[0];
		sin6->addr[1] = orig->ip[1];
		sin6->addr[2] = orig->ip[2];
		sin6->addr[3] = orig->ip[3];
		sin6->scope_id = 0;
		ctx->optlen = sizeof(*sin6);
	}
	ctx->retval = 0;
	weft_count(WEFT_CNT_ORIG_ANSWERED);
	return 1;
}

/* Whether this call is SO_ORIGINAL_DST on one of the proxy's redirected sockets (and was
 * answered). Cheapest tests first: the context fields, then one helper, then the maps. */
static __always_inline int original_dst(struct bpf_sockopt *ctx)
{
	struct weft_addr *orig;
	struct bpf_sock *sk;

	if (ctx->optname != WEFT_SO_ORIGINAL_DST)
		return 0;
	if (ctx->level != WEFT_SOL_IP && ctx->level != WEFT_SOL_IPV6)
		return 0;
	sk = ctx->sk;
	if (!sk || (sk->family != WEFT_AF_INET && sk->family != WEFT_AF_INET6))
		return 0;
	if (!weft_is_proxy())
		return 0;
	orig = bpf_sk_storage_get(&proxy_orig, sk, 0, 0);
	if (!orig)
		orig = from_pairs(sk);
	if (!orig) {
		weft_count(WEFT_CNT_ORIG_UNKNOWN);
		return 0;
	}
	return answer(ctx, orig);
}

/* Leaves the kernel's answer as it is. The program sees at most one page of the caller's
 * buffer; when the kernel's answer is longer, kernels before 6.5 (29ebbba7d461) fail the call
 * with EFAULT because ctx->optlen is larger than what the program saw, unless the program sets
 * optlen to 0, which tells the kernel to keep its own result (the "Large optval" section of
 * Documentation/bpf/prog_cgroup_sockopt.rst). Compared with the smallest page size rather
 * than optval_end: pointer arithmetic with a variable needs CAP_PERFMON, which weft-init does
 * not have (BPF + NET_ADMIN only), and on larger pages the 0 is still a plain pass-through. */
#define WEFT_MIN_PAGE_SIZE 4096
static __always_inline void pass_through(struct bpf_sockopt *ctx)
{
	if (ctx->optlen > WEFT_MIN_PAGE_SIZE)
		ctx->optlen = 0;
}

SEC("cgroup/getsockopt")
int weft_getsockopt(struct bpf_sockopt *ctx)
{
	if (!original_dst(ctx))
		pass_through(ctx);
	return 1;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
