// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Control for vm/check.mjs: a getsockopt program that passes every call through and leaves
 * optlen alone, as weft_getsockopt did before it handed big buffers back. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
SEC("cgroup/getsockopt")
int passthru(struct bpf_sockopt *ctx) { return 1; }
char LICENSE[] SEC("license") = "Dual BSD/GPL";
