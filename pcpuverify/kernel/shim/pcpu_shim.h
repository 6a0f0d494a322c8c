/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The kernel headers mm/percpu.c's allocator core needs, for user space,
 * in the manner of tools/testing/vma and tools/testing/shared: the
 * kernel's C is compiled as it is, against this file.
 *
 * Build parameters (-D, set by pcpuverify/kernel/build.py):
 *   PCPU_PAGE_SIZE   bytes per page: block bits * PCPU_MIN_ALLOC_SIZE
 *   PCPU_WORD_BITS   bits each bitmap word carries: min(block bits, 64)
 *   PCPU_LAYOUT_SEED the July 2017 posting (PCPU_BITMAP_BLOCK_SIZE in bits)
 *
 * Narrow words.  pcpu_index_alloc_map() is
 * "chunk->alloc_map + index * PCPU_BITMAP_BLOCK_BITS / BITS_PER_LONG",
 * exact only when a block is a whole number of words.  So BITS_PER_LONG is
 * PCPU_WORD_BITS: every unsigned long of a bitmap carries that many bits
 * (its low ones), BITS_TO_LONGS sizes the maps in such words, and every
 * bit and bitmap function below works on them.  An 8-bit page then has
 * one word per block, and AddressSanitizer still sees a word read past a
 * map's allocation.  The functions are the generic C of lib/find_bit.c,
 * lib/bitmap.c, include/linux/bitmap.h, include/linux/find.h and
 * include/asm-generic/bitops/non-atomic.h (as tests/linux_bitmap.c has
 * them), with ~0UL replaced by BITMAP_WORD_ALL, the word of all ones.
 *
 * CONFIG_*: CONFIG_SMP is defined; CONFIG_PERCPU_STATS, CONFIG_MEMCG,
 * CONFIG_MEMCG_KMEM and CONFIG_MEM_ALLOC_PROFILING are left undefined, so
 * the statistics, memcg and allocation-tag code compiles away.
 */
#ifndef PCPU_SHIM_H
#define PCPU_SHIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define CONFIG_SMP 1

/* include/linux/compiler*.h, init.h, cache.h */
#define __percpu
#define __force
#define __init
#define __initdata
#define __ro_after_init
#define __read_mostly
#define __maybe_unused __attribute__((unused))
#define ____cacheline_aligned_in_smp
#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)
#define IS_ENABLED(option) 0
#define EXPORT_SYMBOL_GPL(sym)
#define EXPORT_SYMBOL(sym)

/* asm-generic/bug.h: a warning is recorded by the driver as a finding of the step */
void pcpu_shim_warn(const char *file, int line, const char *cond);
#define WARN_ON(cond) ({ int __c = !!(cond); if (__c) pcpu_shim_warn(__FILE__, __LINE__, #cond); __c; })
#define WARN_ON_ONCE(cond) WARN_ON(cond)
#define BUG_ON(cond) ((void)WARN_ON(cond))

typedef unsigned int gfp_t;
typedef uint32_t u32;
typedef uint64_t u64;
#define GFP_KERNEL 0x1u
#define __GFP_ZERO 0x2u

/* include/linux/kernel.h, minmax.h, math.h, overflow.h */
#define min(x, y) ((x) < (y) ? (x) : (y))
#define max(x, y) ((x) > (y) ? (x) : (y))
#define min_t(type, x, y) min((type)(x), (type)(y))
#define max_t(type, x, y) max((type)(x), (type)(y))
#define __ALIGN_MASK(x, mask) (((x) + (mask)) & ~(mask))
#define ALIGN(x, a) __ALIGN_MASK(x, (__typeof__(x))(a) - 1)
#define round_down(x, y) ((x) & ~((__typeof__(x))((y) - 1)))
#define ALIGN_DOWN(x, a) __ALIGN_MASK((x) - ((a) - 1), (a) - 1)
#define DIV_ROUND_UP(n, d) (((n) + (d) - 1) / (d))
#define struct_size(p, member, n) (sizeof(*(p)) + (n) * sizeof(*(p)->member))
#define container_of(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))

/* include/linux/pfn.h, asm/page.h, include/linux/percpu.h */
#define PAGE_SIZE ((unsigned long)PCPU_PAGE_SIZE)
#define PAGE_SHIFT (__builtin_ctzl(PAGE_SIZE))
#define PFN_UP(x) (((x) + PAGE_SIZE - 1) >> PAGE_SHIFT)
#define PFN_DOWN(x) ((x) >> PAGE_SHIFT)
#define PCPU_MIN_ALLOC_SHIFT 2
#define PCPU_MIN_ALLOC_SIZE (1 << PCPU_MIN_ALLOC_SHIFT)
#define PCPU_BITS_PER_PAGE (PAGE_SIZE >> PCPU_MIN_ALLOC_SHIFT) /* 4.14-4.19 */
#ifdef PCPU_LAYOUT_SEED
#define PCPU_BITMAP_BLOCK_SIZE (PAGE_SIZE >> PCPU_MIN_ALLOC_SHIFT) /* PATCH 09: in bits */
#else
#define PCPU_BITMAP_BLOCK_SIZE PAGE_SIZE
#define PCPU_BITMAP_BLOCK_BITS (PCPU_BITMAP_BLOCK_SIZE >> PCPU_MIN_ALLOC_SHIFT)
#endif
#define num_possible_cpus() 1

/* bitops: narrow words (see above) */
#define BITS_PER_LONG PCPU_WORD_BITS
#define BITMAP_WORD_ALL (BITS_PER_LONG == 64 ? ~0UL : (1UL << (BITS_PER_LONG % 64)) - 1)
#define BIT_MASK(nr) (1UL << ((nr) % BITS_PER_LONG))
#define BIT_WORD(nr) ((nr) / BITS_PER_LONG)
#define BITS_TO_LONGS(nr) DIV_ROUND_UP(nr, BITS_PER_LONG)
#define BITMAP_FIRST_WORD_MASK(start) (BITMAP_WORD_ALL & (~0UL << ((start) & (BITS_PER_LONG - 1))))
#define BITMAP_LAST_WORD_MASK(nbits) (BITMAP_WORD_ALL >> (-(nbits) & (BITS_PER_LONG - 1)))

static inline unsigned long __ffs(unsigned long word) { return __builtin_ctzl(word); }
static inline unsigned long __fls(unsigned long word) { return 63 - __builtin_clzl(word); }
static inline int fls(unsigned int x) { return x ? 32 - __builtin_clz(x) : 0; }
static inline unsigned int hweight_long(unsigned long w) { return __builtin_popcountl(w); }

static inline int test_bit(long nr, const unsigned long *addr)
{
	return 1UL & (addr[BIT_WORD(nr)] >> (nr & (BITS_PER_LONG - 1)));
}

static inline void set_bit(long nr, unsigned long *addr)
{
	addr[BIT_WORD(nr)] |= BIT_MASK(nr);
}

static inline void clear_bit(long nr, unsigned long *addr)
{
	addr[BIT_WORD(nr)] &= ~BIT_MASK(nr);
}

#define __set_bit set_bit
#define __clear_bit clear_bit

/* lib/find_bit.c */
static inline unsigned long _find_next_bit(const unsigned long *addr, unsigned long nbits,
					   unsigned long start, unsigned long invert)
{
	unsigned long tmp;

	if (unlikely(start >= nbits))
		return nbits;

	tmp = addr[start / BITS_PER_LONG] ^ invert;

	/* Handle 1st word. */
	tmp &= BITMAP_FIRST_WORD_MASK(start);
	start = round_down(start, BITS_PER_LONG);

	while (!tmp) {
		start += BITS_PER_LONG;
		if (start >= nbits)
			return nbits;

		tmp = addr[start / BITS_PER_LONG] ^ invert;
	}

	return min(start + __ffs(tmp), nbits);
}

static inline unsigned long find_next_bit(const unsigned long *addr, unsigned long size,
					  unsigned long offset)
{
	return _find_next_bit(addr, size, offset, 0UL);
}

static inline unsigned long find_next_zero_bit(const unsigned long *addr, unsigned long size,
					       unsigned long offset)
{
	return _find_next_bit(addr, size, offset, BITMAP_WORD_ALL);
}

static inline unsigned long find_first_bit(const unsigned long *addr, unsigned long size)
{
	return find_next_bit(addr, size, 0);
}

static inline unsigned long find_first_zero_bit(const unsigned long *addr, unsigned long size)
{
	return find_next_zero_bit(addr, size, 0);
}

static inline unsigned long find_last_bit(const unsigned long *addr, unsigned long size)
{
	if (size) {
		unsigned long val = BITMAP_LAST_WORD_MASK(size);
		unsigned long idx = (size - 1) / BITS_PER_LONG;

		do {
			val &= addr[idx];
			if (val)
				return idx * BITS_PER_LONG + __fls(val);

			val = BITMAP_WORD_ALL;
		} while (idx--);
	}
	return size;
}

/* lib/bitmap.c, include/linux/bitmap.h */
static inline int bitmap_weight(const unsigned long *bitmap, unsigned int bits)
{
	unsigned int k, lim = bits / BITS_PER_LONG;
	int w = 0;

	for (k = 0; k < lim; k++)
		w += hweight_long(bitmap[k]);

	if (bits % BITS_PER_LONG)
		w += hweight_long(bitmap[k] & BITMAP_LAST_WORD_MASK(bits));

	return w;
}

static inline void bitmap_set(unsigned long *map, unsigned int start, int len)
{
	unsigned long *p = map + BIT_WORD(start);
	const unsigned int size = start + len;
	int bits_to_set = BITS_PER_LONG - (start % BITS_PER_LONG);
	unsigned long mask_to_set = BITMAP_FIRST_WORD_MASK(start);

	while (len - bits_to_set >= 0) {
		*p |= mask_to_set;
		len -= bits_to_set;
		bits_to_set = BITS_PER_LONG;
		mask_to_set = BITMAP_WORD_ALL;
		p++;
	}
	if (len) {
		mask_to_set &= BITMAP_LAST_WORD_MASK(size);
		*p |= mask_to_set;
	}
}

static inline void bitmap_clear(unsigned long *map, unsigned int start, int len)
{
	unsigned long *p = map + BIT_WORD(start);
	const unsigned int size = start + len;
	int bits_to_clear = BITS_PER_LONG - (start % BITS_PER_LONG);
	unsigned long mask_to_clear = BITMAP_FIRST_WORD_MASK(start);

	while (len - bits_to_clear >= 0) {
		*p &= ~mask_to_clear;
		len -= bits_to_clear;
		bits_to_clear = BITS_PER_LONG;
		mask_to_clear = BITMAP_WORD_ALL;
		p++;
	}
	if (len) {
		mask_to_clear &= BITMAP_LAST_WORD_MASK(size);
		*p &= ~mask_to_clear;
	}
}

static inline void bitmap_fill(unsigned long *dst, unsigned int nbits)
{
	unsigned int k, nlongs = BITS_TO_LONGS(nbits);

	for (k = 0; k + 1 < nlongs; k++)
		dst[k] = BITMAP_WORD_ALL;
	dst[nlongs - 1] = BITMAP_LAST_WORD_MASK(nbits);
}

static inline unsigned long bitmap_find_next_zero_area_off(unsigned long *map, unsigned long size,
							   unsigned long start, unsigned int nr,
							   unsigned long align_mask,
							   unsigned long align_offset)
{
	unsigned long index, end, i;
again:
	index = find_next_zero_bit(map, size, start);

	/* Align allocation */
	index = __ALIGN_MASK(index + align_offset, align_mask) - align_offset;

	end = index + nr;
	if (end > size)
		return end;
	i = find_next_bit(map, end, index);
	if (i < end) {
		start = i + 1;
		goto again;
	}
	return index;
}

static inline unsigned long bitmap_find_next_zero_area(unsigned long *map, unsigned long size,
						       unsigned long start, unsigned int nr,
						       unsigned long align_mask)
{
	return bitmap_find_next_zero_area_off(map, size, start, nr, align_mask, 0);
}

/* include/linux/bitmap.h (5.6-5.17): the region iterators */
static inline void bitmap_next_clear_region(unsigned long *bitmap, unsigned int *rs,
					    unsigned int *re, unsigned int end)
{
	*rs = find_next_zero_bit(bitmap, end, *rs);
	*re = find_next_bit(bitmap, end, *rs + 1);
}

static inline void bitmap_next_set_region(unsigned long *bitmap, unsigned int *rs,
					  unsigned int *re, unsigned int end)
{
	*rs = find_next_bit(bitmap, end, *rs);
	*re = find_next_zero_bit(bitmap, end, *rs + 1);
}

#define bitmap_for_each_clear_region(bitmap, rs, re, start, end)	     \
	for ((rs) = (start),						     \
	     bitmap_next_clear_region((bitmap), &(rs), &(re), (end));	     \
	     (rs) < (re);						     \
	     (rs) = (re) + 1,						     \
	     bitmap_next_clear_region((bitmap), &(rs), &(re), (end)))

#define bitmap_for_each_set_region(bitmap, rs, re, start, end)		     \
	for ((rs) = (start),						     \
	     bitmap_next_set_region((bitmap), &(rs), &(re), (end));	     \
	     (rs) < (re);						     \
	     (rs) = (re) + 1,						     \
	     bitmap_next_set_region((bitmap), &(rs), &(re), (end)))

/* include/linux/find.h (6.x): the *_bitrange iterators */
#define for_each_set_bitrange(b, e, addr, size)				\
	for ((b) = 0;							\
	     (b) = find_next_bit((addr), (size), b),			\
	     (e) = find_next_zero_bit((addr), (size), (b) + 1),		\
	     (b) < (size);						\
	     (b) = (e) + 1)

#define for_each_set_bitrange_from(b, e, addr, size)			\
	for (;								\
	     (b) = find_next_bit((addr), (size), (b)),			\
	     (e) = find_next_zero_bit((addr), (size), (b) + 1),		\
	     (b) < (size);						\
	     (b) = (e) + 1)

#define for_each_clear_bitrange(b, e, addr, size)			\
	for ((b) = 0;							\
	     (b) = find_next_zero_bit((addr), (size), (b)),		\
	     (e) = find_next_bit((addr), (size), (b) + 1),		\
	     (b) < (size);						\
	     (b) = (e) + 1)

#define for_each_clear_bitrange_from(b, e, addr, size)			\
	for (;								\
	     (b) = find_next_zero_bit((addr), (size), (b)),		\
	     (e) = find_next_bit((addr), (size), (b) + 1),		\
	     (b) < (size);						\
	     (b) = (e) + 1)

/* include/linux/list.h */
struct list_head {
	struct list_head *next, *prev;
};

#define LIST_HEAD_INIT(name) { &(name), &(name) }
#define LIST_HEAD(name) struct list_head name = LIST_HEAD_INIT(name)

static inline void INIT_LIST_HEAD(struct list_head *list)
{
	list->next = list;
	list->prev = list;
}

static inline void __list_add(struct list_head *new, struct list_head *prev, struct list_head *next)
{
	next->prev = new;
	new->next = next;
	new->prev = prev;
	prev->next = new;
}

static inline void list_add(struct list_head *new, struct list_head *head)
{
	__list_add(new, head, head->next);
}

static inline void list_add_tail(struct list_head *new, struct list_head *head)
{
	__list_add(new, head->prev, head);
}

static inline void list_del_init(struct list_head *entry)
{
	entry->next->prev = entry->prev;
	entry->prev->next = entry->next;
	INIT_LIST_HEAD(entry);
}

static inline void list_move(struct list_head *list, struct list_head *head)
{
	list_del_init(list);
	list_add(list, head);
}

static inline void list_move_tail(struct list_head *list, struct list_head *head)
{
	list_del_init(list);
	list_add_tail(list, head);
}

static inline int list_empty(const struct list_head *head)
{
	return head->next == head;
}

/* locks, work, memory: one thread, no pages */
typedef int spinlock_t;
struct mutex { int locked; };
struct work_struct { void (*func)(struct work_struct *); };
#define DEFINE_SPINLOCK(x) spinlock_t x
#define DEFINE_MUTEX(x) struct mutex x
#define DECLARE_WORK(n, f) struct work_struct n
#define lockdep_assert_held(l) ((void)(l))
#define schedule_work(w) ((void)(w))
#define slab_is_available() 1
#define kzalloc(size, gfp) calloc(1, size)
#define vzalloc(size) calloc(1, size)
#define __vmalloc(size, gfp, ...) calloc(1, size)
#define kvfree(p) free(p)
#define kfree(p) free(p)
#define vfree(p) free(p)

/* the boot-time allocator and the setup helpers pcpu_alloc_first_chunk() calls (4.14 on) */
#define SMP_CACHE_BYTES 64
#define memblock_virt_alloc(size, align) calloc(1, size)
#define memblock_alloc(size, align) calloc(1, size)
#define memblock_alloc_or_panic(size, align) calloc(1, size) /* 6.19 on */
#define panic(...) abort()
#define PAGE_MASK (~(PAGE_SIZE - 1))
static inline unsigned long gcd(unsigned long a, unsigned long b)
{
	while (b) {
		unsigned long r = a % b;

		a = b;
		b = r;
	}
	return a;
}
static inline unsigned long lcm(unsigned long a, unsigned long b) { return a / gcd(a, b) * b; }

/* include/linux/mm_types.h, memcontrol.h, asm/sections.h */
struct page { unsigned long index; unsigned long private; };
struct pcpu_alloc_info;
static inline bool mem_cgroup_kmem_disabled(void) { return true; }
extern char __per_cpu_start[];

#endif /* PCPU_SHIM_H */
