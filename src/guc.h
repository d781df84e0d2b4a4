/*-------------------------------------------------------------------------
 *
 * guc.h
 *		Configuration parameters of pgoutput_stream.
 *
 * Copyright (c) 2026, pgoutput_stream developers
 *
 * IDENTIFICATION
 *		src/guc.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PGS_GUC_H
#define PGS_GUC_H

extern int	pgs_max_streams;
extern int	pgs_wakeup_interval;
extern int	pgs_restart_delay;
extern int	pgs_slot_save_interval;

extern void pgs_guc_init(void);

#endif							/* PGS_GUC_H */
