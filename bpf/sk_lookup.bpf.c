// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* sk_lookup (pod network namespace): every inbound TCP connection, minus loopback and the
 * excluded inbound ports, is assigned to the proxy's inbound listener from
 * listeners. The proxy reads the original destination with getsockname.
 * A missing listener (proxy not up yet) passes the lookup on unchanged.
 * Needs: Linux 5.9 (sk_lookup, bpf_sk_assign from sk_lookup, sockmap lookup). */
#include "weft.h"

SEC("sk_lookup")
int weft_sk_lookup(struct bpf_sk_lookup *ctx)
{
	__u32 ip[4], key;
	struct bpf_sock *sk;
	long err;

	if (ctx->protocol != WEFT_IPPROTO_TCP)
		return SK_PASS;
	if (ctx->family == WEFT_AF_INET) {
		weft_map_v4(ip, WEFT_LOAD(ctx->local_ip4));
		key = 0;
	} else {
		ip[0] = WEFT_LOAD(ctx->local_ip6[0]);
		ip[1] = WEFT_LOAD(ctx->local_ip6[1]);
		ip[2] = WEFT_LOAD(ctx->local_ip6[2]);
		ip[3] = WEFT_LOAD(ctx->local_ip6[3]);
		key = 1;
	}
	if (weft_is_loopback(ip) || weft_port_excluded((__u16)ctx->local_port, WEFT_DIR_INBOUND))
		return SK_PASS;

	sk = bpf_map_lookup_elem(&listeners, &key);
	if (!sk && key == 0) {
		/* A dual-stack [::] listener serves IPv4 too. */
		key = 1;
		sk = bpf_map_lookup_elem(&listeners, &key);
	}
	if (!sk) {
		weft_count(WEFT_CNT_NO_LISTENER);
		return SK_PASS;
	}
	err = bpf_sk_assign(ctx, sk, 0);
	bpf_sk_release(sk);
	if (!err)
		weft_count(WEFT_CNT_STEERED);
	return SK_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
