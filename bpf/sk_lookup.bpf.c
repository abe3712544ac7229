// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* sk_lookup (pod network namespace): every inbound TCP connection, minus loopback and the
 * excluded inbound ports and the pod's connections to itself, is assigned to the proxy's inbound listener from
 * listeners. The proxy reads the original destination with getsockname.
 * No listener (proxy not up yet, or restarting): the connection is dropped, as TPROXY
 * mode drops it, instead of reaching the app past the proxy's policy; a TCP client
 * retransmits its SYN and gets through once the proxy listens again.
 * Needs: Linux 5.9 (sk_lookup, bpf_sk_assign from sk_lookup, sockmap lookup). */
#include "weft.h"

SEC("sk_lookup")
int weft_sk_lookup(struct bpf_sk_lookup *ctx)
{
	__u32 ip[4], key, self;
	struct bpf_sock *sk;
	long err;

	if (ctx->protocol != WEFT_IPPROTO_TCP)
		return SK_PASS;
	if (ctx->family == WEFT_AF_INET) {
		weft_map_v4(ip, WEFT_LOAD(ctx->local_ip4));
		self = WEFT_LOAD(ctx->remote_ip4) == ip[3];
		key = 0;
	} else {
		ip[0] = WEFT_LOAD(ctx->local_ip6[0]);
		ip[1] = WEFT_LOAD(ctx->local_ip6[1]);
		ip[2] = WEFT_LOAD(ctx->local_ip6[2]);
		ip[3] = WEFT_LOAD(ctx->local_ip6[3]);
		self = WEFT_LOAD(ctx->remote_ip6[0]) == ip[0] && WEFT_LOAD(ctx->remote_ip6[1]) == ip[1] &&
		       WEFT_LOAD(ctx->remote_ip6[2]) == ip[2] && WEFT_LOAD(ctx->remote_ip6[3]) == ip[3];
		key = 1;
		/* IPv6 interception off: IPv6 reaches the app, as in TPROXY mode without ip6tables. */
		if (!(weft_cfg.flags & WEFT_CFG_IPV6) && !weft_is_mapped(ip))
			return SK_PASS;
	}
	/* A connection from the pod to its own address is local: the proxy dialling the app at
	 * the original destination (steering it would loop the proxy into itself), or an app
	 * calling its own pod IP, which TPROXY mode leaves alone too. The kernel picks the
	 * destination itself as the source of a connection to a local address. */
	if (self || weft_is_loopback(ip) || weft_port_excluded((__u16)ctx->local_port, WEFT_DIR_INBOUND))
		return SK_PASS;

	sk = bpf_map_lookup_elem(&listeners, &key);
	if (!sk && key == 0) {
		/* A dual-stack [::] listener serves IPv4 too. */
		key = 1;
		sk = bpf_map_lookup_elem(&listeners, &key);
	}
	if (!sk) {
		weft_count(WEFT_CNT_NO_LISTENER);
		return SK_DROP;
	}
	err = bpf_sk_assign(ctx, sk, 0);
	bpf_sk_release(sk);
	if (!err)
		weft_count(WEFT_CNT_STEERED);
	return SK_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
