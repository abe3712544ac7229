// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* cgroup/getsockopt: answers SO_ORIGINAL_DST (SOL_IP) and IP6T_SO_ORIGINAL_DST (SOL_IPV6)
 * on the proxy's accepted socket from `pairs`, so the proxy asks the same way in every
 * mode. Overrides the kernel's answer: with conntrack loaded it would name the rewritten
 * destination (the proxy itself). Needs: Linux 5.3 (cgroup sockopt), ctx->sk. */
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

SEC("cgroup/getsockopt")
int weft_getsockopt(struct bpf_sockopt *ctx)
{
	struct weft_tuple key = {};
	struct weft_addr *orig;
	struct bpf_sock *sk;
	void *optval, *end;
	__u32 dport;

	if (ctx->optname != WEFT_SO_ORIGINAL_DST)
		return 1;
	if (ctx->level != WEFT_SOL_IP && ctx->level != WEFT_SOL_IPV6)
		return 1;
	sk = ctx->sk;
	if (!sk)
		return 1;
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
	orig = bpf_map_lookup_elem(&pairs, &key);
	if (!orig)
		return 1;

	optval = ctx->optval;
	end = ctx->optval_end;
	if (ctx->level == WEFT_SOL_IP) {
		struct weft_sockaddr_in *sin = optval;

		if (orig->family != WEFT_AF_INET || (void *)(sin + 1) > end)
			return 1;
		sin->family = WEFT_AF_INET;
		sin->port = bpf_htons(orig->port);
		sin->addr = orig->ip[3];
		__builtin_memset(sin->zero, 0, sizeof(sin->zero));
		ctx->optlen = sizeof(*sin);
	} else {
		struct weft_sockaddr_in6 *sin6 = optval;

		if ((void *)(sin6 + 1) > end)
			return 1;
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

char LICENSE[] SEC("license") = "Dual BSD/GPL";
