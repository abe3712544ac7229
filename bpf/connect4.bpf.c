// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* cgroup/connect4: an app's outbound TCP connect is rewritten to the proxy's outbound
 * listener (127.0.0.1:outbound_port); the original destination is kept in the socket's
 * orig_dst storage. Needs: Linux 5.8 (bpf_sock_addr.sk and bpf_sk_storage_get in sock_addr
 * programs; connect4 itself is 4.17). */
#include "weft.h"

SEC("cgroup/connect4")
int weft_connect4(struct bpf_sock_addr *ctx)
{
	struct weft_addr orig = { .family = WEFT_AF_INET };

	if (ctx->type != WEFT_SOCK_STREAM || ctx->protocol != WEFT_IPPROTO_TCP)
		return 1;
	/* The proxy's own upstream connections must reach the real destination. */
	if (weft_is_proxy())
		return 1;
	weft_map_v4(orig.ip, ctx->user_ip4);
	orig.port = bpf_ntohs((__u16)ctx->user_port);
	if (!weft_should_intercept(orig.ip, orig.port))
		return 1;

	/* Fail open: without a stored destination the proxy could not forward, so the
	 * connection stays on its original path instead of breaking. */
	if (weft_remember_orig(ctx, &orig))
		return 1;
	ctx->user_ip4 = bpf_htonl(0x7f000001);
	ctx->user_port = bpf_htons(weft_cfg.outbound_port);
	weft_count(WEFT_CNT_REDIRECTED);
	return 1;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
