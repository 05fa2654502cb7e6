/*
 * open.c -- spool_open: a handle is the store's connection (store.c) with
 * the steps the features take at a transaction's edges (precommit.c:
 * settling, counters) attached.  The store, the bottom layer, is given
 * those steps here rather than calling any feature by name.
 */
#include "config.h"

#include "spool-int.h"

int
spool_open(spool **out, const char *path, int flags)
{
	return (spool__store_open(out, path, flags, &spool__txn_hooks));
}
