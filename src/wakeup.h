/*-------------------------------------------------------------------------
 *
 * wakeup.h
 *		Waking stream workers when a transaction commits.
 *
 * Copyright (c) 2026, pgoutput_stream developers
 *
 * IDENTIFICATION
 *		src/wakeup.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PGS_WAKEUP_H
#define PGS_WAKEUP_H

extern void pgs_wakeup_init(void);

#endif							/* PGS_WAKEUP_H */
