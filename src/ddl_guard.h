/*-------------------------------------------------------------------------
 *
 * ddl_guard.h
 *		Keeping streams consistent when the extension is dropped.
 *
 * Copyright (c) 2026, pgoutput_stream developers
 *
 * IDENTIFICATION
 *		src/ddl_guard.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PGS_DDL_GUARD_H
#define PGS_DDL_GUARD_H

extern void pgs_ddl_guard_init(void);

#endif							/* PGS_DDL_GUARD_H */
