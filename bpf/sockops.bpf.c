// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* sockops: hands each redirected app socket's original destination over to the proxy's
 * accepted socket (so that getsockopt can answer SO_ORIGINAL_DST), puts both ends in
 * local_socks for sk_msg, and puts the proxy's inbound listener in listeners on listen(2).
 * Needs: Linux 5.10 (bpf_sock_ops.sk for the socket-storage helpers, and a sockmap update
 * from TCP_LISTEN_CB, both new in 5.10). */
#include "weft.h"

static __always_inline void tuple_of(const struct bpf_sock_ops *skops, struct weft_tuple *t)
{
	if (skops->family == WEFT_AF_INET) {
		weft_map_v4(t->local_ip, WEFT_LOAD(skops->local_ip4));
		weft_map_v4(t->remote_ip, WEFT_LOAD(skops->remote_ip4));
	} else {
		t->local_ip[0] = WEFT_LOAD(skops->local_ip6[0]);
		t->local_ip[1] = WEFT_LOAD(skops->local_ip6[1]);
		t->local_ip[2] = WEFT_LOAD(skops->local_ip6[2]);
		t->local_ip[3] = WEFT_LOAD(skops->local_ip6[3]);
		t->remote_ip[0] = WEFT_LOAD(skops->remote_ip6[0]);
		t->remote_ip[1] = WEFT_LOAD(skops->remote_ip6[1]);
		t->remote_ip[2] = WEFT_LOAD(skops->remote_ip6[2]);
		t->remote_ip[3] = WEFT_LOAD(skops->remote_ip6[3]);
	}
	t->local_port = (__u16)skops->local_port;
	/* remote_port holds the network-order port in its upper half. */
	t->remote_port = (__u16)bpf_ntohl(skops->remote_port);
}

static __always_inline void swap_tuple(const struct weft_tuple *t, struct weft_tuple *s)
{
	__builtin_memcpy(s->local_ip, t->remote_ip, sizeof(s->local_ip));
	__builtin_memcpy(s->remote_ip, t->local_ip, sizeof(s->remote_ip));
	s->local_port = t->remote_port;
	s->remote_port = t->local_port;
}

/* A socket in a sockhash gets tcp_bpf's send and receive paths. Only worth it when sk_msg
 * is attached to redirect between the pair; otherwise it would only change how the app's
 * own socket reads (blocking reads were seen returning EAGAIN). */
static __always_inline void add_local_sock(struct bpf_sock_ops *skops, struct weft_tuple *t)
{
	if (!(weft_cfg.flags & WEFT_CFG_SK_MSG))
		return;
	if (bpf_sock_hash_update(skops, &local_socks, t, BPF_NOEXIST))
		weft_count(WEFT_CNT_SOCKHASH_FULL);
}

static __always_inline void on_listen(struct bpf_sock_ops *skops)
{
	__u32 key = skops->family == WEFT_AF_INET6 ? 1 : 0;

	if (skops->local_port != weft_cfg.inbound_port)
		return;
	bpf_sock_map_update(skops, &listeners, &key, BPF_ANY);
}

/* The app's end of a redirected connect: hand its original destination over to the proxy's
 * end through `pairs`, under the tuple the proxy's end will see. Only sockets connected to
 * the outbound port can be redirected ones, so every other connect costs no map lookup. */
static __always_inline void on_active(struct bpf_sock_ops *skops)
{
	struct weft_tuple t = {}, proxy_view = {};
	struct weft_addr *orig;
	struct bpf_sock *sk;

	if ((__u16)bpf_ntohl(skops->remote_port) != weft_cfg.outbound_port)
		return;
	sk = skops->sk;
	if (!sk)
		return;
	orig = bpf_sk_storage_get(&orig_dst, sk, 0, 0);
	if (!orig)
		return;
	tuple_of(skops, &t);
	swap_tuple(&t, &proxy_view);
	if (bpf_map_update_elem(&pairs, &proxy_view, orig, BPF_ANY))
		weft_count(WEFT_CNT_PAIR_FULL);
	bpf_sk_storage_delete(&orig_dst, sk);
	add_local_sock(skops, &t);
}

/* The proxy's accepted end of a redirected connection: take the hand-over into its own
 * storage, where getsockopt finds it for as long as the socket lives. */
static __always_inline void on_passive(struct bpf_sock_ops *skops)
{
	struct weft_tuple t = {};
	struct weft_addr *orig;
	struct bpf_sock *sk;

	if (skops->local_port != weft_cfg.outbound_port)
		return;
	tuple_of(skops, &t);
	orig = bpf_map_lookup_elem(&pairs, &t);
	sk = skops->sk;
	if (orig && sk && bpf_sk_storage_get(&proxy_orig, sk, orig, BPF_SK_STORAGE_GET_F_CREATE))
		bpf_map_delete_elem(&pairs, &t);
	add_local_sock(skops, &t);
}

SEC("sockops")
int weft_sockops(struct bpf_sock_ops *skops)
{
	switch (skops->op) {
	case BPF_SOCK_OPS_TCP_LISTEN_CB:
		on_listen(skops);
		break;
	case BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB:
		on_active(skops);
		break;
	case BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB:
		on_passive(skops);
		break;
	}
	return 1;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
