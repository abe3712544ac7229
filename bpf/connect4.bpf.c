// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* cgroup/connect4: an app's outbound TCP connect is rewritten to the proxy's outbound
 * listener (127.0.0.1:outbound_port); the original destination is kept in orig_dst under
 * the socket cookie. Needs: Linux 4.17 (connect4), cookie in sock_addr since 4.12. */
#include "weft.h"

SEC("cgroup/connect4")
int weft_connect4(struct bpf_sock_addr *ctx)
{
	struct weft_addr orig = { .family = WEFT_AF_INET };
	__u64 cookie;

	if (ctx->type != WEFT_SOCK_STREAM || ctx->protocol != WEFT_IPPROTO_TCP)
		return 1;
	/* The proxy's own upstream connections must reach the real destination. */
	if (weft_is_proxy())
		return 1;
	weft_map_v4(orig.ip, ctx->user_ip4);
	orig.port = bpf_ntohs((__u16)ctx->user_port);
	if (!weft_should_intercept(orig.ip, orig.port))
		return 1;

	cookie = bpf_get_socket_cookie(ctx);
	/* Fail open: without a stored destination the proxy could not forward, so a full map
	 * leaves the connection on its original path instead of breaking it. */
	if (bpf_map_update_elem(&orig_dst, &cookie, &orig, BPF_ANY)) {
		weft_count(WEFT_CNT_ORIG_FULL);
		return 1;
	}
	ctx->user_ip4 = bpf_htonl(0x7f000001);
	ctx->user_port = bpf_htons(weft_cfg.outbound_port);
	weft_count(WEFT_CNT_REDIRECTED);
	return 1;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
