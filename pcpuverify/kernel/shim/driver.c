/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The harness's driver, compiled after the kernel's allocator core (see
 * pcpuverify/kernel/build.py).  One chunk, driven over a pipe, one command
 * a line on stdin, one reply a line on stdout:
 *
 *   i P0 P1 ...      new chunk: pcpu_alloc_chunk(), pcpu_chunk_relocate(chunk, -1),
 *                    then pcpu_chunk_populated() of each listed page
 *   I STATIC RESERVED DYN   (4.14 on) the first chunk and, if RESERVED, the
 *                    reserved chunk, as pcpu_setup_first_chunk() makes them (below)
 *   a BITS ALIGN ATOMIC [R]   what pcpu_alloc() does with this one chunk (below);
 *                    R=1: from the reserved chunk
 *   f BIT_OFF [R]    pcpu_free_area(chunk, BIT_OFF * PCPU_MIN_ALLOC_SIZE), R=1: of the reserved chunk
 *   p START END      pcpu_chunk_populated() of each unpopulated region in [START, END)
 *   d START END      pcpu_chunk_depopulated() of each populated region in [START, END)
 *   F                flush the replies so far (no reply of its own)
 *
 * and from 5.2 on, the block-level functions on a state the harness sets
 * (pcpuverify/kernel/block_step.py):
 *
 *   m BITS           set the chunk's alloc_map, '0' or '1' per bit, bit 0 first
 *   b I F0 ... F7    set md_blocks[I] (I = -1: chunk_md): scan_hint scan_hint_start
 *                    contig_hint contig_hint_start left_free right_free first_free nr_bits
 *   u BIT_OFF BITS   pcpu_block_update_hint_alloc(chunk, BIT_OFF, BITS)
 *   v BIT_OFF BITS   pcpu_block_update_hint_free(chunk, BIT_OFF, BITS)
 *   w BIT_OFF BITS   pcpu_block_update_scan(chunk, BIT_OFF, BITS)
 *   r FULL           pcpu_chunk_refresh_hint(chunk, FULL): chunk_md from the blocks
 *
 * Reply: "RET|WARNINGS|STATE[|RESERVED]": RET the alloc's bit offset (-1:
 * failed; 0 for other commands), WARNINGS the WARN_ON()s the step fired
 * ("file:line cond" joined by ';'), STATE the dump, space-separated, in the
 * order of pcpuverify/kernel/schema.py for the layout, RESERVED the reserved
 * chunk's (its chunk part only) when there is one.
 *
 * Layout macros (one is defined): PCPU_LAYOUT_SEED, PCPU_LAYOUT_4_14,
 * PCPU_LAYOUT_5_2, PCPU_LAYOUT_5_9, PCPU_LAYOUT_5_14.
 */
#include <stdio.h>
#include <sanitizer/common_interface_defs.h>

char __per_cpu_start[1];

static char drv_warnings[4096];

void pcpu_shim_warn(const char *file, int line, const char *cond)
{
	size_t used = strlen(drv_warnings);

	snprintf(drv_warnings + used, sizeof(drv_warnings) - used, "%s%s:%d %s",
		 used ? ";" : "", file, line, cond);
}

/* -- per layout: the slot lists, the populate calls, the dumped fields ---- */

#if defined(PCPU_LAYOUT_5_9)
#define DRV_SLOT_LIST(slot) (&pcpu_chunk_list(PCPU_CHUNK_ROOT)[slot])
#define DRV_NR_EMPTY_POP_PAGES pcpu_nr_empty_pop_pages[PCPU_CHUNK_ROOT]
#define DRV_ALLOC_CHUNK() pcpu_alloc_chunk(PCPU_CHUNK_ROOT, GFP_KERNEL)
#elif defined(PCPU_LAYOUT_5_14)
#define DRV_SLOT_LIST(slot) (&pcpu_chunk_lists[slot])
#define DRV_NR_EMPTY_POP_PAGES pcpu_nr_empty_pop_pages
#else /* the 2017 posting, 4.14, 5.2 */
#define DRV_SLOT_LIST(slot) (&pcpu_slot[slot])
#define DRV_NR_EMPTY_POP_PAGES pcpu_nr_empty_pop_pages
#endif

/* 4.19 on: pcpu_alloc_chunk(gfp) (PCPU_ALLOC_CHUNK_GFP is set from the source) */
#if defined(PCPU_LAYOUT_5_9)
#elif defined(PCPU_ALLOC_CHUNK_GFP)
#define DRV_ALLOC_CHUNK() pcpu_alloc_chunk(GFP_KERNEL)
#else
#define DRV_ALLOC_CHUNK() pcpu_alloc_chunk()
#endif

#if defined(PCPU_LAYOUT_4_14)
#define DRV_POPULATED(chunk, rs, re, for_alloc) pcpu_chunk_populated(chunk, rs, re, for_alloc)
#else
#define DRV_POPULATED(chunk, rs, re, for_alloc) pcpu_chunk_populated(chunk, rs, re)
#endif

/* the posting sizes slots in bits (PATCH 09) and names its block struct pcpu_bitmap_md */
#if defined(PCPU_LAYOUT_SEED)
#define DRV_SLOT_SIZE(bits, bytes) (bits)
#define DRV_MD struct pcpu_bitmap_md
#else
#define DRV_SLOT_SIZE(bits, bytes) (bytes)
#define DRV_MD struct pcpu_block_md
#endif

/* every release: one metadata block per page, PAGE_SIZE / PCPU_MIN_ALLOC_SIZE bits each */
#define DRV_MAP_BITS(c) ((int)((c)->nr_pages * PAGE_SIZE / PCPU_MIN_ALLOC_SIZE))

/* the slots pcpu_alloc() searches: up to the empty-chunk slot */
#if defined(PCPU_LAYOUT_5_14)
#define DRV_LAST_SEARCHED_SLOT pcpu_free_slot
#else
#define DRV_LAST_SEARCHED_SLOT (pcpu_nr_slots - 1)
#endif

static void drv_dump_md(const DRV_MD *b)
{
#if defined(PCPU_LAYOUT_SEED) || defined(PCPU_LAYOUT_4_14)
	printf(" %d %d %d %d %d", b->contig_hint, b->contig_hint_start, b->left_free,
	       b->right_free, b->first_free);
#else
	printf(" %d %d %d %d %d %d %d %d", b->scan_hint, b->scan_hint_start, b->contig_hint,
	       b->contig_hint_start, b->left_free, b->right_free, b->first_free, b->nr_bits);
#endif
}

static void drv_dump_chunk_fields(const struct pcpu_chunk *c)
{
#if defined(PCPU_LAYOUT_SEED)
	printf(" %d %d %d %d", c->free_bits, c->contig_hint, c->contig_hint_start, c->first_free_block);
#elif defined(PCPU_LAYOUT_4_14)
	printf(" %d %d %d %d", c->free_bytes, c->contig_bits, c->contig_bits_start, c->first_bit);
#else
	printf(" %d", c->free_bytes);
	drv_dump_md(&c->chunk_md);
#endif
	printf(" %d %d %d", c->nr_populated, c->nr_empty_pop_pages, c->immutable);
#if defined(PCPU_LAYOUT_SEED)
	printf(" %d", c->has_reserved);
#endif
#if defined(PCPU_LAYOUT_5_14)
	printf(" %d", c->isolated);
#endif
}

/* -- the chunk and what is done to it ------------------------------------ */

static struct pcpu_chunk *drv_chunk;

static void drv_setup_globals(int nr_pages)
{
	int i;

	/* as pcpu_setup_first_chunk() determines them */
	pcpu_unit_pages = nr_pages;
	pcpu_unit_size = pcpu_unit_pages << PAGE_SHIFT;
	pcpu_chunk_struct_size = sizeof(struct pcpu_chunk) +
		BITS_TO_LONGS(pcpu_unit_pages) * sizeof(unsigned long);
#if defined(PCPU_LAYOUT_5_14)
	pcpu_sidelined_slot = __pcpu_size_to_slot(pcpu_unit_size) + 1;
	pcpu_free_slot = pcpu_sidelined_slot + 1;
	pcpu_to_depopulate_slot = pcpu_free_slot + 1;
	pcpu_nr_slots = pcpu_to_depopulate_slot + 1;
	pcpu_chunk_lists = calloc(pcpu_nr_slots, sizeof(pcpu_chunk_lists[0]));
#elif defined(PCPU_LAYOUT_5_9)
	pcpu_nr_slots = __pcpu_size_to_slot(pcpu_unit_size) + 2;
	pcpu_chunk_lists = calloc(pcpu_nr_slots * PCPU_NR_CHUNK_TYPES, sizeof(pcpu_chunk_lists[0]));
#elif defined(PCPU_LAYOUT_SEED)
	pcpu_nr_slots = __pcpu_size_to_slot(pcpu_pages_to_bits(pcpu_unit_pages)) + 2;
	pcpu_slot = calloc(pcpu_nr_slots, sizeof(pcpu_slot[0]));
#else
	pcpu_nr_slots = __pcpu_size_to_slot(pcpu_unit_size) + 2;
	pcpu_slot = calloc(pcpu_nr_slots, sizeof(pcpu_slot[0]));
#endif
	for (i = 0; i < pcpu_nr_slots; i++)
		INIT_LIST_HEAD(DRV_SLOT_LIST(i));
}

static void drv_free(struct pcpu_chunk *chunk)
{
	if (!chunk)
		return;
	list_del_init(&chunk->list);
	free(chunk->alloc_map);
	free(chunk->bound_map);
	free(chunk->md_blocks);
	free(chunk);
}

static void drv_free_chunk(void)
{
	drv_free(drv_chunk);
	drv_free(pcpu_reserved_chunk);
	drv_chunk = NULL;
	pcpu_reserved_chunk = NULL;
	pcpu_first_chunk = NULL;
}

#if !defined(PCPU_LAYOUT_SEED)
/*
 * The lines of pcpu_setup_first_chunk() (4.14 on, the same in every
 * release since) that make the first chunk: the chunk beside the static
 * region serves the reserved region if there is one, else the dynamic
 * region; pcpu_alloc_first_chunk() hides what of its pages lies outside the
 * region.  The static region ends aligned to PCPU_MIN_ALLOC_SIZE, taken
 * from the dynamic region.  base_addr is page aligned (PCPU_SETUP_BUG_ON(offset_in_page(
 * base_addr))) and never dereferenced: a number stands in for it.
 */
static void drv_setup_first_chunk(size_t ai_static_size, size_t reserved_size, size_t ai_dyn_size)
{
	unsigned long base_addr = 1UL << 30;
	size_t static_size = ALIGN(ai_static_size, PCPU_MIN_ALLOC_SIZE);
	size_t dyn_size = ai_dyn_size - (static_size - ai_static_size);
	unsigned long tmp_addr = base_addr + static_size;

	if (reserved_size)
		pcpu_reserved_chunk = pcpu_alloc_first_chunk(tmp_addr, reserved_size);
	tmp_addr = base_addr + static_size + reserved_size;
	pcpu_first_chunk = pcpu_alloc_first_chunk(tmp_addr, dyn_size);
	DRV_NR_EMPTY_POP_PAGES = pcpu_first_chunk->nr_empty_pop_pages;
	pcpu_chunk_relocate(pcpu_first_chunk, -1);
	drv_chunk = pcpu_first_chunk;
}
#endif

static int drv_slot_of(const struct pcpu_chunk *chunk)
{
	int slot;
	const struct list_head *pos;

	for (slot = 0; slot < pcpu_nr_slots; slot++)
		for (pos = DRV_SLOT_LIST(slot)->next; pos != DRV_SLOT_LIST(slot); pos = pos->next)
			if (pos == &chunk->list)
				return slot;
	return -1;
}

/* pcpu_for_each_unpop_region / pcpu_for_each_pop_region over [start, end) */
static void drv_populate(struct pcpu_chunk *chunk, int start, int end, bool for_alloc)
{
	int rs = start, re;

	for (;;) {
		rs = find_next_zero_bit(chunk->populated, end, rs);
		re = find_next_bit(chunk->populated, end, rs + 1);
		if (rs >= re)
			break;
		DRV_POPULATED(chunk, rs, re, for_alloc);
		rs = re + 1;
	}
}

static void drv_depopulate(struct pcpu_chunk *chunk, int start, int end)
{
	int rs = start, re;

	for (;;) {
		rs = find_next_bit(chunk->populated, end, rs);
		re = find_next_zero_bit(chunk->populated, end, rs + 1);
		if (rs >= re)
			break;
		pcpu_chunk_depopulated(chunk, rs, re);
		rs = re + 1;
	}
}

/*
 * The body of pcpu_alloc() for a dynamic chunk, with this one chunk: the
 * slot walk from pcpu_size_to_slot(size), pcpu_find_block_fit() (5.2 on:
 * a chunk on a slot below PCPU_SLOT_FAIL_THRESHOLD that cannot fit moves to
 * slot 0), pcpu_alloc_area(), 5.14 on pcpu_reintegrate_chunk(), and for a
 * non-atomic request the population of the area's unpopulated pages.
 * Returns the bit offset, -1 when the chunk cannot serve.
 */
static int drv_alloc(int bits, int bit_align, bool is_atomic, bool reserved)
{
	size_t size = (size_t)bits * PCPU_MIN_ALLOC_SIZE;
	struct pcpu_chunk *chunk = drv_chunk;
	int slot, off = -1;

	if (reserved && pcpu_reserved_chunk) {
		/* pcpu_alloc(): the reserved chunk alone, then area_found */
		chunk = pcpu_reserved_chunk;
		off = pcpu_find_block_fit(chunk, bits, bit_align, is_atomic);
		if (off < 0)
			return -1;
		off = pcpu_alloc_area(chunk, bits, bit_align, off);
		if (off < 0)
			return -1;
		if (!is_atomic)
			drv_populate(chunk, PFN_DOWN(off), PFN_UP(off + size), true);
		return off / PCPU_MIN_ALLOC_SIZE;
	}

	for (slot = pcpu_size_to_slot(DRV_SLOT_SIZE(bits, size)); slot <= DRV_LAST_SEARCHED_SLOT; slot++) {
		if (drv_slot_of(chunk) != slot)
			continue;
#if defined(PCPU_LAYOUT_SEED)
		/* the posting's pcpu_alloc() skips a chunk whose contig hint is too small */
		if (bits > chunk->contig_hint)
			continue;
#endif
		off = pcpu_find_block_fit(chunk, bits, bit_align, is_atomic);
		if (off < 0) {
#if defined(PCPU_SLOT_FAIL_THRESHOLD)
			if (slot < PCPU_SLOT_FAIL_THRESHOLD)
				pcpu_chunk_move(chunk, 0);
#endif
			continue;
		}
		off = pcpu_alloc_area(chunk, bits, bit_align, off);
		if (off >= 0)
			break;
	}
	if (off < 0)
		return -1;
#if defined(PCPU_LAYOUT_5_14)
	pcpu_reintegrate_chunk(chunk);
#endif
	if (!is_atomic)
		drv_populate(chunk, PFN_DOWN(off), PFN_UP(off + size), true);
	return off / PCPU_MIN_ALLOC_SIZE;
}

static void drv_print_bitmap(const unsigned long *map, int nbits)
{
	int i;

	putchar(' ');
	for (i = 0; i < nbits; i++)
		putchar('0' + test_bit(i, map));
}

static void drv_print_chunk(const struct pcpu_chunk *c)
{
	int i, nr_bits = DRV_MAP_BITS(c);

	printf(" %d %d", c->nr_pages, drv_slot_of(c));
	drv_print_bitmap(c->alloc_map, nr_bits);
	drv_print_bitmap(c->bound_map, nr_bits + 1);
	drv_print_bitmap(c->populated, c->nr_pages);
	drv_dump_chunk_fields(c);
	for (i = 0; i < c->nr_pages; i++)
		drv_dump_md(&c->md_blocks[i]);
}

static void drv_reply(int ret)
{
	printf("%d|%s|%d", ret, drv_warnings, DRV_NR_EMPTY_POP_PAGES);
	drv_warnings[0] = '\0';
	drv_print_chunk(drv_chunk);
	if (pcpu_reserved_chunk) {
		putchar('|');
		drv_print_chunk(pcpu_reserved_chunk);
	}
	putchar('\n');
}

#if !defined(PCPU_LAYOUT_SEED) && !defined(PCPU_LAYOUT_4_14)
static void drv_set_map(const char *bits)
{
	int i, nr_bits = DRV_MAP_BITS(drv_chunk);

	for (i = 0; i < nr_bits && (bits[i] == '0' || bits[i] == '1'); i++) {
		if (bits[i] == '1')
			set_bit(i, drv_chunk->alloc_map);
		else
			clear_bit(i, drv_chunk->alloc_map);
	}
}

static void drv_set_md(const char *fields)
{
	int i, f[8];
	struct pcpu_block_md *b;

	if (sscanf(fields, "%d %d %d %d %d %d %d %d %d", &i, &f[0], &f[1], &f[2], &f[3], &f[4], &f[5], &f[6],
		   &f[7]) != 9 || i < -1 || i >= drv_chunk->nr_pages)
		return;
	b = i < 0 ? &drv_chunk->chunk_md : &drv_chunk->md_blocks[i];
	b->scan_hint = f[0];
	b->scan_hint_start = f[1];
	b->contig_hint = f[2];
	b->contig_hint_start = f[3];
	b->left_free = f[4];
	b->right_free = f[5];
	b->first_free = f[6];
	b->nr_bits = f[7];
}
#endif

/* a sanitizer report ends the process: the replies before it still reach the harness */
static void drv_flush(void)
{
	fflush(stdout);
}

/* an 'm' line holds a bit per bit of the chunk: up to 64 pages of 1024 bits */
static char line[65536 + 64];

int main(void)
{
	int a, b, c, r, n, pos;

	__sanitizer_set_death_callback(drv_flush);
	drv_setup_globals(PCPU_NR_PAGES);
	while (fgets(line, sizeof(line), stdin)) {
		switch (line[0]) {
		case 'i':
			drv_free_chunk();
			DRV_NR_EMPTY_POP_PAGES = 0;
			drv_chunk = DRV_ALLOC_CHUNK();
			pcpu_chunk_relocate(drv_chunk, -1);
			for (pos = 1; sscanf(line + pos, "%d%n", &a, &n) == 1; pos += n)
				DRV_POPULATED(drv_chunk, a, a + 1, false);
			drv_reply(0);
			break;
#if !defined(PCPU_LAYOUT_SEED)
		case 'I':
			drv_free_chunk();
			DRV_NR_EMPTY_POP_PAGES = 0;
			sscanf(line + 1, "%d %d %d", &a, &b, &c);
			drv_setup_first_chunk(a, b, c);
			drv_reply(0);
			break;
#endif
		case 'a':
			r = 0;
			sscanf(line + 1, "%d %d %d %d", &a, &b, &c, &r);
			drv_reply(drv_alloc(a, b, c, r));
			break;
		case 'f':
			r = 0;
			sscanf(line + 1, "%d %d", &a, &r);
			pcpu_free_area(r ? pcpu_reserved_chunk : drv_chunk, a * PCPU_MIN_ALLOC_SIZE);
			drv_reply(0);
			break;
		case 'p':
			sscanf(line + 1, "%d %d", &a, &b);
			drv_populate(drv_chunk, a, b, false);
			drv_reply(0);
			break;
		case 'd':
			sscanf(line + 1, "%d %d", &a, &b);
			drv_depopulate(drv_chunk, a, b);
			drv_reply(0);
			break;
		case 'F':
			drv_flush();
			break;
#if !defined(PCPU_LAYOUT_SEED) && !defined(PCPU_LAYOUT_4_14)
		case 'm':
			drv_set_map(line + 2);
			drv_reply(0);
			break;
		case 'b':
			drv_set_md(line + 1);
			drv_reply(0);
			break;
		case 'u':
		case 'v':
		case 'w':
			sscanf(line + 1, "%d %d", &a, &b);
			if (line[0] == 'u')
				pcpu_block_update_hint_alloc(drv_chunk, a, b);
			else if (line[0] == 'v')
				pcpu_block_update_hint_free(drv_chunk, a, b);
			else
				pcpu_block_update_scan(drv_chunk, a, b);
			drv_reply(0);
			break;
		case 'r':
			sscanf(line + 1, "%d", &a);
			pcpu_chunk_refresh_hint(drv_chunk, a);
			drv_reply(0);
			break;
#endif
		default:
			return 2;
		}
	}
	drv_free_chunk();
	return 0;
}
