/*-------------------------------------------------------------------------
 *
 * asan_preload.c
 *		Preloaded with AddressSanitizer's runtime into the fuzzing server,
 *		so that the runtime can start in an uninstrumented postgres binary.
 *
 * The postgres binary is not built with AddressSanitizer, so the runtime
 * is preloaded (LD_PRELOAD) and initializes itself on the first malloc().
 * Debian's postgres links libgpg-error (through libsystemd and
 * libgcrypt), whose library constructor calls bindtextdomain(), and the
 * first malloc() happens in there, with glibc's gettext lock held.  The
 * runtime's initialization looks up the optional symbol swift_demangle
 * with dlsym() and calls dlerror() when it is missing; dlerror() formats
 * its message through gettext, takes the same lock again and leaves it
 * corrupted, and the server hangs in its first bindtextdomain().
 *
 * Defining the symbol avoids the failed lookup.  The runtime calls it only
 * to demangle Swift names in reports; returning NULL means "not a Swift
 * name".  This library is built without instrumentation.
 *
 * Copyright (c) 2026, pgoutput_stream developers
 *
 * IDENTIFICATION
 *		test/fuzz/asan_preload.c
 *
 *-------------------------------------------------------------------------
 */
#include <stddef.h>
#include <stdint.h>

char	   *swift_demangle(const char *mangled, size_t mangled_len, char *out,
						   size_t *out_len, uint32_t flags);

char *
swift_demangle(const char *mangled, size_t mangled_len, char *out,
			   size_t *out_len, uint32_t flags)
{
	(void) mangled;
	(void) mangled_len;
	(void) out;
	(void) out_len;
	(void) flags;
	return NULL;
}
