/*
 * powercut-vfs.c -- a test-only SQLite VFS that cuts the power (see
 * powercut-vfs.h for what it promises).
 *
 * Every call passes through to the default VFS, so the process sees its
 * files as usual.  Beside them the shim keeps a shadow of each database,
 * WAL and journal file: the durable image (what the disk holds for sure)
 * and the operations since the file's last sync (writes and truncations,
 * oldest first).  A sync of any handle on a path applies them to the
 * image, as fsync(2) does for every descriptor of the inode.  Names are
 * taken as durable at once (a journaling file system orders them; SQLite
 * syncs the directory of a new WAL anyway); contents only when synced.
 *
 * The cut runs under the one mutex every read, write, truncation, sync
 * and delete takes, so no write of another thread can land on the real
 * file after the image was put there, and no read sees it half written.
 * The real files are never fsync'd: the shadow is the durable state under
 * test, and hundreds of cut points would otherwise wait for the test
 * machine's disk.  Temporary files (spool keeps none: temp_store is
 * MEMORY) pass through unshadowed.
 *
 * The VFS answers io_methods version 2 (no xFetch): SQLite then never maps
 * the files, so every change goes through xWrite, where it is seen.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "powercut-vfs.h"

/* One operation not synced yet. */
struct pc_op {
	int		 kind;		/* 'w' write, 't' truncation */
	sqlite3_int64	 off;		/* where, or the new size */
	size_t		 len;
	unsigned char	*data;
};

/* What the disk holds of one path. */
struct pc_shadow {
	char		*path;
	int		 main_db;	/* a -shm lives beside it */
	int		 exists;	/* the name is on disk */
	unsigned char	*img;		/* the durable content */
	size_t		 len;
	size_t		 cap;
	struct pc_op	*op;		/* since the last sync */
	size_t		 nop;
	size_t		 capop;
	struct pc_shadow *next;
};

/* An open file: ours, then the real VFS's right after it. */
struct pc_file {
	sqlite3_file		 base;
	struct pc_shadow	*sh;	/* NULL: a temporary file */
	sqlite3_file		*real;
};

static struct {
	pthread_mutex_t		 mu;
	pthread_cond_t		 cv;	/* the power was cut */
	sqlite3_vfs		 vfs;
	sqlite3_vfs		*real;
	int64_t			 cut_at;
	int64_t			 ops;
	int64_t			 cut_op;
	int			 cut;	/* read without mu: atomics */
	int			 mode;
	uint64_t		 rnd;
	struct pc_shadow	*files;
} pc = { .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER };

static const sqlite3_io_methods	 pc_io;

/* The harness cannot go on without memory: say so and stop the child. */
static void *
pc_alloc(void *p, size_t n)
{
	if ((p = realloc(p, n == 0 ? 1 : n)) == NULL) {
		fprintf(stderr, "powercut-vfs: out of memory\n");
		abort();
	}
	return (p);
}

/* splitmix64: the sectors that land come from the seed alone. */
static uint64_t
pc_random(void)
{
	uint64_t	 z;

	z = (pc.rnd += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return (z ^ (z >> 31));
}

static int
pc_is_cut(void)
{
	return (__atomic_load_n(&pc.cut, __ATOMIC_ACQUIRE));
}

/* Make room for n bytes in an image. */
static void
pc_reserve(unsigned char **img, size_t *cap, size_t n)
{
	if (n <= *cap)
		return;
	if (n < *cap * 2)
		n = *cap * 2;
	*img = pc_alloc(*img, n);
	*cap = n;
}

/* Write len bytes at off into an image, zero-filling a gap as a file
 * system does. */
static void
pc_put(unsigned char **img, size_t *len, size_t *cap, sqlite3_int64 off,
    const unsigned char *data, size_t n)
{
	size_t	 end = (size_t)off + n;

	pc_reserve(img, cap, end);
	if ((size_t)off > *len)
		memset(*img + *len, 0, (size_t)off - *len);
	memcpy(*img + off, data, n);
	if (end > *len)
		*len = end;
}

/* Truncate (or extend with zeros) an image to size. */
static void
pc_resize(unsigned char **img, size_t *len, size_t *cap, sqlite3_int64 size)
{
	pc_reserve(img, cap, (size_t)size);
	if ((size_t)size > *len)
		memset(*img + *len, 0, (size_t)size - *len);
	*len = (size_t)size;
}

/*
 * Apply op to an image.  With torn 0 all of it lands; with torn 1 each
 * sector it touches lands or not at random (a disk writes sectors, in any
 * order); with torn 2 too, but at least one lands and, when it spans
 * several, at least one does not.  A write within a sector lands whole or
 * not at all, and never changes the sector's other bytes: SQLite's
 * "powersafe overwrite", which the unix VFS reports.
 */
static void
pc_apply(unsigned char **img, size_t *len, size_t *cap, const struct pc_op *op,
    int torn)
{
	sqlite3_int64	 a, b, end;
	uint64_t	 bits = 0;
	int		 n, i, pick;

	if (op->kind == 't') {
		if (torn == 0 || (pc_random() & 1))
			pc_resize(img, len, cap, op->off);
		return;
	}
	if (torn == 0) {
		pc_put(img, len, cap, op->off, op->data, op->len);
		return;
	}
	end = op->off + (sqlite3_int64)op->len;
	n = (int)((end - 1) / PCVFS_SECTOR - op->off / PCVFS_SECTOR + 1);
	if (n > 64)
		n = 64;		/* SQLite writes a page at most */
	bits = pc_random();
	if (n < 64)
		bits &= (1ULL << n) - 1;
	if (torn == 2) {
		pick = (int)(pc_random() % (uint64_t)n);
		if (bits == 0)
			bits |= 1ULL << pick;
		else if (n > 1 && bits == (n < 64 ? (1ULL << n) - 1 : ~0ULL))
			bits &= ~(1ULL << pick);
	}
	for (a = op->off, i = 0; a < end; a = b, i++) {
		b = (a / PCVFS_SECTOR + 1) * PCVFS_SECTOR;
		if (b > end || i >= 63)
			b = end;
		if (bits & (1ULL << i))
			pc_put(img, len, cap, a, op->data + (a - op->off),
			    (size_t)(b - a));
	}
}

/* Forget the operations a sync made durable, or a delete dropped. */
static void
pc_ops_clear(struct pc_shadow *sh)
{
	size_t	 i;

	for (i = 0; i < sh->nop; i++)
		free(sh->op[i].data);
	sh->nop = 0;
}

/* Keep one operation until the next sync. */
static void
pc_ops_add(struct pc_shadow *sh, int kind, sqlite3_int64 off,
    const void *data, size_t len)
{
	struct pc_op	*op;

	if (sh->nop == sh->capop) {
		sh->capop = sh->capop == 0 ? 16 : sh->capop * 2;
		sh->op = pc_alloc(sh->op, sh->capop * sizeof *sh->op);
	}
	op = &sh->op[sh->nop++];
	op->kind = kind;
	op->off = off;
	op->len = len;
	op->data = NULL;
	if (len > 0) {
		op->data = pc_alloc(NULL, len);
		memcpy(op->data, data, len);
	}
}

/* Put a file's image where the process had it, or remove it. */
static void
pc_write_file(const char *path, const unsigned char *img, size_t len)
{
	ssize_t	 w;
	size_t	 off;
	int	 fd;

	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	    0600)) == -1) {
		fprintf(stderr, "powercut-vfs: %s: %s\n", path,
		    strerror(errno));
		abort();
	}
	for (off = 0; off < len; off += (size_t)w)
		if ((w = write(fd, img + off, len - off)) <= 0) {
			fprintf(stderr, "powercut-vfs: write %s: %s\n", path,
			    strerror(errno));
			abort();
		}
	close(fd);
}

/*
 * Cut the power (under pc.mu): from now on every call fails, and each
 * file gets what the disk kept of it.  The -shm goes: it is rebuilt from
 * the WAL by the next process to open the database, as after a reboot.
 */
static void
pc_cut_locked(void)
{
	struct pc_shadow	*sh;
	unsigned char		*img;
	size_t			 len, cap, i, last;
	char			 shm[4096];

	if (pc.cut)
		return;
	__atomic_store_n(&pc.cut, 1, __ATOMIC_RELEASE);
	pc.cut_op = pc.ops;
	for (sh = pc.files; sh != NULL; sh = sh->next) {
		if (sh->main_db) {
			snprintf(shm, sizeof shm, "%s-shm", sh->path);
			(void)unlink(shm);
		}
		if (!sh->exists) {
			(void)unlink(sh->path);
			continue;
		}
		len = cap = sh->len;
		img = pc_alloc(NULL, cap);
		if (len > 0)
			memcpy(img, sh->img, len);
		last = sh->nop;
		for (i = sh->nop; i > 0; i--)
			if (sh->op[i - 1].kind == 'w') {
				last = i - 1;
				break;
			}
		for (i = 0; i < sh->nop; i++)
			if (pc.mode == PCVFS_SCATTER)
				pc_apply(&img, &len, &cap, &sh->op[i], 1);
			else if (pc.mode == PCVFS_TORN && i == last)
				pc_apply(&img, &len, &cap, &sh->op[i], 2);
		pc_write_file(sh->path, img, len);
		free(img);
	}
	pthread_cond_broadcast(&pc.cv);
}

/* Count a mutating operation (under pc.mu); 1 if it is the one that
 * cuts the power. */
static int
pc_count_locked(void)
{
	if (++pc.ops == pc.cut_at)
		return (1);
	return (0);
}

/* ---- io_methods --------------------------------------------------------- */

static int
pc_close(sqlite3_file *f)
{
	struct pc_file	*pf = (struct pc_file *)f;

	/* Closing a descriptor writes nothing, even after the cut. */
	return (pf->real->pMethods->xClose(pf->real));
}

/* Under the mutex too: no read sees a file half rewritten by the cut. */
static int
pc_read(sqlite3_file *f, void *buf, int amt, sqlite3_int64 off)
{
	struct pc_file	*pf = (struct pc_file *)f;
	int		 rc = SQLITE_IOERR_READ;

	pthread_mutex_lock(&pc.mu);
	if (!pc.cut)
		rc = pf->real->pMethods->xRead(pf->real, buf, amt, off);
	pthread_mutex_unlock(&pc.mu);
	return (rc);
}

static int
pc_write(sqlite3_file *f, const void *buf, int amt, sqlite3_int64 off)
{
	struct pc_file	*pf = (struct pc_file *)f;
	int		 rc;

	pthread_mutex_lock(&pc.mu);
	if (pc.cut) {
		pthread_mutex_unlock(&pc.mu);
		return (SQLITE_IOERR_WRITE);
	}
	if (pf->sh != NULL && pc_count_locked()) {
		/* The write under way when the power goes: it may tear. */
		pc_ops_add(pf->sh, 'w', off, buf, (size_t)amt);
		pc_cut_locked();
		pthread_mutex_unlock(&pc.mu);
		return (SQLITE_IOERR_WRITE);
	}
	rc = pf->real->pMethods->xWrite(pf->real, buf, amt, off);
	if (rc == SQLITE_OK && pf->sh != NULL)
		pc_ops_add(pf->sh, 'w', off, buf, (size_t)amt);
	pthread_mutex_unlock(&pc.mu);
	return (rc);
}

static int
pc_truncate(sqlite3_file *f, sqlite3_int64 size)
{
	struct pc_file	*pf = (struct pc_file *)f;
	int		 rc;

	pthread_mutex_lock(&pc.mu);
	if (pc.cut) {
		pthread_mutex_unlock(&pc.mu);
		return (SQLITE_IOERR_TRUNCATE);
	}
	if (pf->sh != NULL && pc_count_locked()) {
		/* Under way when the power goes: it may land or not. */
		pc_ops_add(pf->sh, 't', size, NULL, 0);
		pc_cut_locked();
		pthread_mutex_unlock(&pc.mu);
		return (SQLITE_IOERR_TRUNCATE);
	}
	rc = pf->real->pMethods->xTruncate(pf->real, size);
	if (rc == SQLITE_OK && pf->sh != NULL)
		pc_ops_add(pf->sh, 't', size, NULL, 0);
	pthread_mutex_unlock(&pc.mu);
	return (rc);
}

/* What was written before is durable now; the real file is not synced
 * (see the top of the file). */
static int
pc_sync(sqlite3_file *f, int flags)
{
	struct pc_file		*pf = (struct pc_file *)f;
	struct pc_shadow	*sh = pf->sh;
	size_t			 i;

	pthread_mutex_lock(&pc.mu);
	if (pc.cut || (sh != NULL && pc_count_locked())) {
		pc_cut_locked();
		pthread_mutex_unlock(&pc.mu);
		return (SQLITE_IOERR_FSYNC);
	}
	if (sh != NULL) {
		for (i = 0; i < sh->nop; i++)
			pc_apply(&sh->img, &sh->len, &sh->cap, &sh->op[i], 0);
		pc_ops_clear(sh);
	}
	pthread_mutex_unlock(&pc.mu);
	return (SQLITE_OK);
}

static int
pc_file_size(sqlite3_file *f, sqlite3_int64 *size)
{
	struct pc_file	*pf = (struct pc_file *)f;

	if (pc_is_cut())
		return (SQLITE_IOERR_FSTAT);
	return (pf->real->pMethods->xFileSize(pf->real, size));
}

static int
pc_lock(sqlite3_file *f, int level)
{
	struct pc_file	*pf = (struct pc_file *)f;

	if (pc_is_cut())
		return (SQLITE_IOERR_LOCK);
	return (pf->real->pMethods->xLock(pf->real, level));
}

/* Letting go is allowed after the cut: it changes no file. */
static int
pc_unlock(sqlite3_file *f, int level)
{
	struct pc_file	*pf = (struct pc_file *)f;

	return (pf->real->pMethods->xUnlock(pf->real, level));
}

static int
pc_check_reserved(sqlite3_file *f, int *out)
{
	struct pc_file	*pf = (struct pc_file *)f;

	if (pc_is_cut())
		return (SQLITE_IOERR_CHECKRESERVEDLOCK);
	return (pf->real->pMethods->xCheckReservedLock(pf->real, out));
}

static int
pc_file_control(sqlite3_file *f, int op, void *arg)
{
	struct pc_file	*pf = (struct pc_file *)f;

	/* A size hint may extend the real file behind xTruncate's back. */
	if (op == SQLITE_FCNTL_SIZE_HINT && pc_is_cut())
		return (SQLITE_IOERR);
	return (pf->real->pMethods->xFileControl(pf->real, op, arg));
}

static int
pc_sector_size(sqlite3_file *f)
{
	struct pc_file	*pf = (struct pc_file *)f;

	return (pf->real->pMethods->xSectorSize(pf->real));
}

/* Promise nothing the model does not keep: no atomic writes, no ordered
 * appends.  Powersafe overwrite holds (pc_apply). */
static int
pc_device_characteristics(sqlite3_file *f)
{
	struct pc_file	*pf = (struct pc_file *)f;
	int		 c;

	c = pf->real->pMethods->xDeviceCharacteristics(pf->real);
	return (c & (SQLITE_IOCAP_POWERSAFE_OVERWRITE |
	    SQLITE_IOCAP_UNDELETABLE_WHEN_OPEN));
}

static int
pc_shm_map(sqlite3_file *f, int pg, int pgsz, int extend, void volatile **pp)
{
	struct pc_file	*pf = (struct pc_file *)f;

	if (pc_is_cut())
		return (SQLITE_IOERR_SHMMAP);
	return (pf->real->pMethods->xShmMap(pf->real, pg, pgsz, extend, pp));
}

static int
pc_shm_lock(sqlite3_file *f, int offset, int n, int flags)
{
	struct pc_file	*pf = (struct pc_file *)f;

	if (pc_is_cut() && !(flags & SQLITE_SHM_UNLOCK))
		return (SQLITE_IOERR_SHMLOCK);
	return (pf->real->pMethods->xShmLock(pf->real, offset, n, flags));
}

static void
pc_shm_barrier(sqlite3_file *f)
{
	struct pc_file	*pf = (struct pc_file *)f;

	pf->real->pMethods->xShmBarrier(pf->real);
}

/* After the cut the -shm is gone already: unmap, delete nothing. */
static int
pc_shm_unmap(sqlite3_file *f, int delete_flag)
{
	struct pc_file	*pf = (struct pc_file *)f;

	return (pf->real->pMethods->xShmUnmap(pf->real,
	    pc_is_cut() ? 0 : delete_flag));
}

static const sqlite3_io_methods pc_io = {
	2,
	pc_close,
	pc_read,
	pc_write,
	pc_truncate,
	pc_sync,
	pc_file_size,
	pc_lock,
	pc_unlock,
	pc_check_reserved,
	pc_file_control,
	pc_sector_size,
	pc_device_characteristics,
	pc_shm_map,
	pc_shm_lock,
	pc_shm_barrier,
	pc_shm_unmap,
	NULL,
	NULL
};

/* ---- The VFS ------------------------------------------------------------ */

static struct pc_shadow *
pc_find(const char *path)
{
	struct pc_shadow	*sh;

	for (sh = pc.files; sh != NULL; sh = sh->next)
		if (strcmp(sh->path, path) == 0)
			return (sh);
	return (NULL);
}

/* The shadow of a path first opened now: what is on disk already is
 * durable (the parent wrote it before this process began). */
static struct pc_shadow *
pc_shadow_new(const char *path, sqlite3_file *real, int main_db)
{
	struct pc_shadow	*sh;
	sqlite3_int64		 size = 0, off;
	int			 n;

	sh = pc_alloc(NULL, sizeof *sh);
	memset(sh, 0, sizeof *sh);
	sh->path = pc_alloc(NULL, strlen(path) + 1);
	strcpy(sh->path, path);
	sh->main_db = main_db;
	sh->exists = 1;
	if (real->pMethods->xFileSize(real, &size) != SQLITE_OK)
		size = 0;
	pc_reserve(&sh->img, &sh->cap, (size_t)size);
	for (off = 0; off < size; off += n) {
		n = size - off > 65536 ? 65536 : (int)(size - off);
		if (real->pMethods->xRead(real, sh->img + off, n, off) !=
		    SQLITE_OK) {
			fprintf(stderr, "powercut-vfs: cannot read %s\n", path);
			abort();
		}
	}
	sh->len = (size_t)size;
	sh->next = pc.files;
	pc.files = sh;
	return (sh);
}

static int
pc_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags,
    int *out_flags)
{
	struct pc_file		*pf = (struct pc_file *)f;
	struct pc_shadow	*sh;
	int			 rc, kept;

	memset(pf, 0, sizeof *pf);
	pf->real = (sqlite3_file *)(pf + 1);
	kept = name != NULL && (flags & (SQLITE_OPEN_MAIN_DB |
	    SQLITE_OPEN_WAL | SQLITE_OPEN_MAIN_JOURNAL));
	pthread_mutex_lock(&pc.mu);
	if (pc.cut) {
		pthread_mutex_unlock(&pc.mu);
		return (SQLITE_CANTOPEN);
	}
	rc = pc.real->xOpen(pc.real, name, pf->real, flags, out_flags);
	if (pf->real->pMethods != NULL)
		pf->base.pMethods = &pc_io;	/* xClose is owed */
	if (rc == SQLITE_OK && kept) {
		if ((sh = pc_find(name)) == NULL)
			sh = pc_shadow_new(name, pf->real,
			    (flags & SQLITE_OPEN_MAIN_DB) != 0);
		else if (!sh->exists) {
			/* Made again after a delete: empty until synced. */
			sh->exists = 1;
			sh->len = 0;
		}
		pf->sh = sh;
	}
	pthread_mutex_unlock(&pc.mu);
	return (rc);
}

static int
pc_delete(sqlite3_vfs *vfs, const char *name, int dir_sync)
{
	struct pc_shadow	*sh;
	int			 rc;

	pthread_mutex_lock(&pc.mu);
	sh = pc_find(name);
	if (pc.cut || (sh != NULL && sh->exists && pc_count_locked())) {
		pc_cut_locked();
		pthread_mutex_unlock(&pc.mu);
		return (SQLITE_IOERR_DELETE);
	}
	rc = pc.real->xDelete(pc.real, name, dir_sync);
	if (sh != NULL && (rc == SQLITE_OK ||
	    rc == SQLITE_IOERR_DELETE_NOENT)) {
		sh->exists = 0;
		sh->len = 0;
		pc_ops_clear(sh);
	}
	pthread_mutex_unlock(&pc.mu);
	return (rc);
}

static int
pc_access(sqlite3_vfs *vfs, const char *name, int flags, int *out)
{
	if (pc_is_cut())
		return (SQLITE_IOERR_ACCESS);
	return (pc.real->xAccess(pc.real, name, flags, out));
}

static int
pc_full_pathname(sqlite3_vfs *vfs, const char *name, int n, char *out)
{
	return (pc.real->xFullPathname(pc.real, name, n, out));
}

static void *
pc_dl_open(sqlite3_vfs *vfs, const char *name)
{
	return (pc.real->xDlOpen(pc.real, name));
}

static void
pc_dl_error(sqlite3_vfs *vfs, int n, char *msg)
{
	pc.real->xDlError(pc.real, n, msg);
}

static void
(*pc_dl_sym(sqlite3_vfs *vfs, void *h, const char *sym))(void)
{
	return (pc.real->xDlSym(pc.real, h, sym));
}

static void
pc_dl_close(sqlite3_vfs *vfs, void *h)
{
	pc.real->xDlClose(pc.real, h);
}

static int
pc_randomness(sqlite3_vfs *vfs, int n, char *out)
{
	return (pc.real->xRandomness(pc.real, n, out));
}

static int
pc_sleep(sqlite3_vfs *vfs, int us)
{
	return (pc.real->xSleep(pc.real, us));
}

static int
pc_current_time(sqlite3_vfs *vfs, double *out)
{
	return (pc.real->xCurrentTime(pc.real, out));
}

static int
pc_last_error(sqlite3_vfs *vfs, int n, char *out)
{
	return (pc.real->xGetLastError(pc.real, n, out));
}

static int
pc_current_time64(sqlite3_vfs *vfs, sqlite3_int64 *out)
{
	return (pc.real->xCurrentTimeInt64(pc.real, out));
}

int
pcvfs_install(int64_t cut_at, int mode, uint64_t seed)
{
	if ((pc.real = sqlite3_vfs_find(NULL)) == NULL || pc.real->iVersion < 2)
		return (SQLITE_ERROR);
	pc.cut_at = cut_at;
	pc.mode = mode;
	pc.rnd = seed;
	pc.vfs.iVersion = 2;
	pc.vfs.szOsFile = (int)sizeof(struct pc_file) + pc.real->szOsFile;
	pc.vfs.mxPathname = pc.real->mxPathname;
	pc.vfs.zName = "powercut";
	pc.vfs.xOpen = pc_open;
	pc.vfs.xDelete = pc_delete;
	pc.vfs.xAccess = pc_access;
	pc.vfs.xFullPathname = pc_full_pathname;
	pc.vfs.xDlOpen = pc_dl_open;
	pc.vfs.xDlError = pc_dl_error;
	pc.vfs.xDlSym = pc_dl_sym;
	pc.vfs.xDlClose = pc_dl_close;
	pc.vfs.xRandomness = pc_randomness;
	pc.vfs.xSleep = pc_sleep;
	pc.vfs.xCurrentTime = pc_current_time;
	pc.vfs.xGetLastError = pc_last_error;
	pc.vfs.xCurrentTimeInt64 = pc_current_time64;
	return (sqlite3_vfs_register(&pc.vfs, 1));
}

int64_t
pcvfs_ops(void)
{
	int64_t	 n;

	pthread_mutex_lock(&pc.mu);
	n = pc.ops;
	pthread_mutex_unlock(&pc.mu);
	return (n);
}

void
pcvfs_cut(void)
{
	pthread_mutex_lock(&pc.mu);
	pc_cut_locked();
	pthread_mutex_unlock(&pc.mu);
}

int64_t
pcvfs_cut_op(void)
{
	int64_t	 n;

	pthread_mutex_lock(&pc.mu);
	n = pc.cut ? pc.cut_op : 0;
	pthread_mutex_unlock(&pc.mu);
	return (n);
}

void
pcvfs_wait_cut(void)
{
	pthread_mutex_lock(&pc.mu);
	while (!pc.cut)
		pthread_cond_wait(&pc.cv, &pc.mu);
	pthread_mutex_unlock(&pc.mu);
}

const char *
pcvfs_mode_name(int mode)
{
	switch (mode) {
	case PCVFS_DROP:
		return ("drop");
	case PCVFS_TORN:
		return ("torn");
	case PCVFS_SCATTER:
		return ("scatter");
	}
	return ("?");
}
