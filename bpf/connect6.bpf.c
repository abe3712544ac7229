// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* cgroup/connect6: like connect4 for AF_INET6 sockets. An IPv4-mapped destination
 * (dual-stack socket) goes to ::ffff:127.0.0.1 (the proxy's IPv4 listener); a real IPv6
 * destination goes to [::1]:outbound_port, only when IPv6 interception is on, so the
 * proxy must listen on ::1 or :: in that case. Needs: Linux 5.8, as connect4. */
#include "weft.h"

SEC("cgroup/connect6")
int weft_connect6(struct bpf_sock_addr *ctx)
{
	struct weft_addr orig = { .family = WEFT_AF_INET6 };
	int mapped;

	if (ctx->type != WEFT_SOCK_STREAM || ctx->protocol != WEFT_IPPROTO_TCP)
		return 1;
	if (weft_is_proxy())
		return 1;
	orig.ip[0] = WEFT_LOAD(ctx->user_ip6[0]);
	orig.ip[1] = WEFT_LOAD(ctx->user_ip6[1]);
	orig.ip[2] = WEFT_LOAD(ctx->user_ip6[2]);
	orig.ip[3] = WEFT_LOAD(ctx->user_ip6[3]);
	orig.port = bpf_ntohs((__u16)ctx->user_port);
	mapped = weft_is_mapped(orig.ip);
	if (mapped)
		orig.family = WEFT_AF_INET;
	else if (!(weft_cfg.flags & WEFT_CFG_IPV6))
		return 1;
	if (!weft_should_intercept(orig.ip, orig.port))
		return 1;

	if (weft_remember_orig(ctx, &orig))
		return 1;
	ctx->user_ip6[0] = 0;
	ctx->user_ip6[1] = 0;
	if (mapped) {
		ctx->user_ip6[2] = bpf_htonl(0x0000ffff);
		ctx->user_ip6[3] = bpf_htonl(0x7f000001);
	} else {
		ctx->user_ip6[2] = 0;
		ctx->user_ip6[3] = bpf_htonl(1);
	}
	ctx->user_port = bpf_htons(weft_cfg.outbound_port);
	weft_count(WEFT_CNT_REDIRECTED);
	return 1;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
