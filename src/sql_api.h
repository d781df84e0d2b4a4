/*-------------------------------------------------------------------------
 *
 * sql_api.h
 *		The SQL functions that manage streams.
 *
 * Copyright (c) 2026, pgoutput_stream developers
 *
 * IDENTIFICATION
 *		src/sql_api.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PGS_SQL_API_H
#define PGS_SQL_API_H

extern void pgs_check_manager(void);
extern void pgs_remove_all_streams(void);

#endif							/* PGS_SQL_API_H */
