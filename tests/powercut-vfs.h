/*
 * powercut-vfs.h -- a test-only SQLite VFS that cuts the power.
 *
 * It wraps the default (unix) VFS and keeps, for each database, WAL and
 * journal file, the content a disk would keep if the power went now: the
 * writes and truncations made before the file's last sync.  At the chosen
 * operation (a write, truncation, sync or delete of such a file, counted
 * from 1 across the process) or at pcvfs_cut(), it cuts the power: that
 * operation and every later read, write, sync, lock and open fails with
 * SQLITE_IOERR, and the files on disk are rewritten as the disk kept them
 * (the -shm, which is no durable state, is deleted).  Never linked into
 * libspool: only tests/t-powercut.
 */
#ifndef POWERCUT_VFS_H
#define POWERCUT_VFS_H

#include <stdint.h>

/* What lands of the writes made since a file's last sync. */
#define PCVFS_DROP	0	/* nothing: only synced writes are kept */
#define PCVFS_TORN	1	/* some sectors of each file's last one */
#define PCVFS_SCATTER	2	/* some sectors of every one, in order */
#define PCVFS_MODES	3

#define PCVFS_SECTOR	512	/* written whole or not at all */

/*
 * Register the VFS as the process's default, to cut the power at
 * operation cut_at (0: only at pcvfs_cut), keeping what mode says of the
 * unsynced writes; seed chooses which sectors land.  Call it once, before
 * anything opens a database; an SQLite result code.
 */
int		 pcvfs_install(int64_t cut_at, int mode, uint64_t seed);

/* Operations counted so far. */
int64_t		 pcvfs_ops(void);

/* Cut the power now, if it was not cut yet. */
void		 pcvfs_cut(void);

/* The operation at which the power was cut (0: not cut yet). */
int64_t		 pcvfs_cut_op(void);

/* Wait until the power is cut. */
void		 pcvfs_wait_cut(void);

/* "drop", "torn" or "scatter". */
const char	*pcvfs_mode_name(int mode);

#endif
