/* Internal: the checkpoint file container.
 *
 * A checkpoint is an ordered list of named, typed arrays. The container is generic:
 * the trainer decides what goes in (weights, optimiser state, counters, the options
 * as text) and how the names are spelled. Entries keep the order they were added in,
 * and a file reads back in the order it was written.
 *
 * ---- File format, version 1 ------------------------------------------------------
 *
 * Every integer is little-endian and every value is written byte by byte, so files
 * move between hosts of any byte order. Offsets are from the start of the file.
 *
 *   header     8 bytes   magic "RECURCKP"
 *              u32       format version, 1
 *              u32       number of entries
 *   entry      u16       name length L, 1..127
 *   (repeated) L bytes   name: no NUL byte, unique within the file, not terminated
 *              u8        type: 1 F32 (IEEE-754 binary32), 2 I32 (two's complement),
 *                              3 U64, 4 TEXT (bytes)
 *              u8        ndim D: 1..4 (TEXT: 1)
 *              D x u32   dims, each 0..2^31-1 (TEXT: the byte length)
 *              u64       payload length in bytes: product(dims) x element size
 *                        (4 for F32 and I32, 8 for U64, 1 for TEXT)
 *              payload   the elements in C (row-major) order, each little-endian
 *   trailer    u64       length in bytes of everything before the trailer
 *              u32       CRC-32 of everything before the trailer: IEEE polynomial,
 *                        reflected (0xEDB88320), initial and final xor 0xFFFFFFFF,
 *                        the value zlib's crc32() gives
 *              8 bytes   magic "RECUREND"
 *
 * Nothing may follow the trailer. A file with no entries is 36 bytes long.
 *
 * Reading validates everything before it trusts anything: magic, version, each
 * length against the bytes left in the file before it allocates (a corrupted length
 * fails with a message, it never causes a large allocation or a read past the end),
 * names, types, ranks, payload lengths against the dims, the trailer and its CRC, and
 * that nothing follows the trailer. A read holds the file and the decoded entries (about
 * twice the file's size, plus sizeof(ckpt_entry) per entry); nothing is sized by a
 * length field before the file is shown to hold that many bytes. When the file ends in an intact trailer the CRC is
 * checked before the entries, so damage is reported as "checksum mismatch"; a file cut
 * short is reported as "truncated" with the offset where it ends.
 *
 * Writing is atomic: the file is written to "<path>.tmp.<pid>" in the same directory,
 * fsync'ed, renamed over path, and the directory is fsync'ed. A crash or a kill at any
 * moment leaves path holding either its previous contents or the complete new file
 * (a process killed mid-write can leave its own "<path>.tmp.<pid>" behind; nothing
 * removes such files). The temporary name is per process: two threads of one process
 * must not write the same path at the same time.
 *
 * ---- Conventions -----------------------------------------------------------------
 *
 * Errors are values: functions return 0, or -1 with a message in err that names the
 * file (or the entry) and what was wrong; err may be NULL or errlen 0 to drop it.
 * Nothing is printed, nothing leaks on an error path, and a failed call leaves its
 * outputs as they were.
 *
 * In memory, data points to product(shape) elements of float (F32), int32_t (I32),
 * uint64_t (U64) or char (TEXT). The TEXT bytes are followed by a NUL that is not
 * part of the entry (not counted, not stored in the file), so a text without NUL
 * bytes can be used directly as a C string. data is never NULL in an entry of a
 * checkpoint, even for zero elements.
 */
#ifndef RC_CKPT_H
#define RC_CKPT_H

#include <stddef.h>
#include <stdint.h>

#define CKPT_VERSION 1
/* Longest entry name, in bytes, without its terminating NUL. */
#define CKPT_NAME_MAX 127
#define CKPT_MAX_DIMS 4

typedef enum { CKPT_F32 = 1, CKPT_I32 = 2, CKPT_U64 = 3, CKPT_TEXT = 4 } ckpt_type;

typedef struct ckpt_entry {
    char name[128];        /* NUL-terminated, unique within a checkpoint */
    ckpt_type type;
    int ndim;              /* 1..4 for arrays; TEXT: 1 */
    int shape[4];          /* elements per dim (>= 0); TEXT: shape[0] = byte length */
    void *data;            /* owned by the ckpt after ckpt_add / ckpt_read */
} ckpt_entry;

typedef struct ckpt { int n, cap; ckpt_entry *e; } ckpt;

/* An empty checkpoint. */
void ckpt_init(ckpt *c);
/* Frees every entry and the list; *c is empty (ckpt_init'ed) afterwards. NULL is a no-op. */
void ckpt_free(ckpt *c);

/* Appends an entry, copying data (product of shape elements; for TEXT, shape[0] bytes).
 * data may be NULL only when that count is 0. Returns 0, or -1 with a message (duplicate
 * or empty name, name longer than CKPT_NAME_MAX, bad type, bad ndim, negative dim,
 * too many elements, out of memory); *c is unchanged on error. */
int ckpt_add(ckpt *c, const char *name, ckpt_type t, int ndim, const int *shape,
             const void *data, char *err, size_t errlen);
/* ckpt_add of a TEXT entry holding strlen(text) bytes of text. */
int ckpt_add_text(ckpt *c, const char *name, const char *text, char *err, size_t errlen);
/* ckpt_add of a U64 entry of shape [count] (count >= 0). */
int ckpt_add_u64(ckpt *c, const char *name, const uint64_t *v, int count, char *err,
                 size_t errlen);

/* The entry called name, or NULL (also for NULL arguments). */
const ckpt_entry *ckpt_find(const ckpt *c, const char *name);
/* Element count of an entry: the product of its shape (TEXT: its byte length); 0 for NULL. */
size_t ckpt_count(const ckpt_entry *e);

/* Writes c to path atomically (see above). On failure the previous file at path is
 * untouched and the temporary file removed. The entries are checked first, as ckpt_add
 * would (they may have been edited in place). Returns 0, or -1 with a message. */
int ckpt_write(const char *path, const ckpt *c, char *err, size_t errlen);

/* Removes the temporary files "<path>.tmp.<pid>" that a writer killed during
 * ckpt_write left behind: pid as ckpt_write writes it, of this process or of no live
 * process (a live writer's file is kept, as is every other name). Call it before this
 * process writes path. Returns how many files it removed, or -1 with a message (a file
 * it could not remove, a folder it could not read; a missing folder is 0). */
int ckpt_remove_stale_temps(const char *path, char *err, size_t errlen);

/* Reads and fully validates the file at path into *c, which must be empty (ckpt_init'ed,
 * or ckpt_free'd). Returns 0, or -1 with a message; on error *c stays empty. */
int ckpt_read(const char *path, ckpt *c, char *err, size_t errlen);

/* CRC-32 as zlib's crc32(crc, buf, len): start with crc = 0, chain by passing the
 * previous result. Table-driven (slicing by 8); the tables are built on each call
 * (a few microseconds), so call it on whole buffers rather than byte by byte. */
uint32_t ckpt_crc32(uint32_t crc, const void *buf, size_t len);

#endif
