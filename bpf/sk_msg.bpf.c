// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* sk_msg (on local_socks): bytes the proxy writes to an app over the redirected hop go
 * straight to the app socket's ingress queue, skipping the TCP/IP stack. Only that
 * direction: bytes redirected into the proxy's socket would sit in the sockmap's ingress
 * queue, which splice(2) — the proxy's native relay — never reads (seen in the e2e), so the
 * app-to-proxy direction keeps the TCP path. A missing peer also takes the normal path.
 * Needs: Linux 4.20 (sk_msg, msg_redirect_hash). */
#include "weft.h"

SEC("sk_msg")
int weft_sk_msg(struct sk_msg_md *msg)
{
	struct weft_tuple peer = {};

	if (msg->local_port != weft_cfg.outbound_port)
		return SK_PASS;
	if (msg->family == WEFT_AF_INET) {
		weft_map_v4(peer.local_ip, WEFT_LOAD(msg->remote_ip4));
		weft_map_v4(peer.remote_ip, WEFT_LOAD(msg->local_ip4));
	} else {
		peer.local_ip[0] = WEFT_LOAD(msg->remote_ip6[0]);
		peer.local_ip[1] = WEFT_LOAD(msg->remote_ip6[1]);
		peer.local_ip[2] = WEFT_LOAD(msg->remote_ip6[2]);
		peer.local_ip[3] = WEFT_LOAD(msg->remote_ip6[3]);
		peer.remote_ip[0] = WEFT_LOAD(msg->local_ip6[0]);
		peer.remote_ip[1] = WEFT_LOAD(msg->local_ip6[1]);
		peer.remote_ip[2] = WEFT_LOAD(msg->local_ip6[2]);
		peer.remote_ip[3] = WEFT_LOAD(msg->local_ip6[3]);
	}
	peer.local_port = (__u16)bpf_ntohl(msg->remote_port);
	peer.remote_port = (__u16)msg->local_port;
	/* On failure (peer gone) no redirect is recorded and SK_PASS sends normally. */
	if (bpf_msg_redirect_hash(msg, &local_socks, &peer, BPF_F_INGRESS) == SK_PASS)
		weft_count(WEFT_CNT_MSG_REDIRECTED);
	return SK_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
