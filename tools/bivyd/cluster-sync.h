/* bivyd layer 4 (cluster): reconciliation with etcd and the timer that drives it. */
#ifndef BIVYD_CLUSTER_SYNC_H
#define BIVYD_CLUSTER_SYNC_H

/* register the renew/poll timer and the per-iteration fencing check (after cluster_start) */
void cluster_sync_init(void);
/* one reconciliation pass now (after a request), when the lease is fresh */
void cluster_reconcile_now(void);

#endif
