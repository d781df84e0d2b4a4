/*-------------------------------------------------------------------------
 *
 * decoder.h
 *		In-process logical decoding of a stream's slot with pgoutput.
 *
 * Copyright (c) 2026, pgoutput_stream developers
 *
 * IDENTIFICATION
 *		src/decoder.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PGS_DECODER_H
#define PGS_DECODER_H

#include "replication/logical.h"

#include "proto.h"
#include "stream_config.h"

typedef struct PgsDecoder
{
	LogicalDecodingContext *ctx;
	PgsProtoState *proto;
	MemoryContext message_cxt;	/* reset after every pgoutput message */
} PgsDecoder;

extern List *pgs_decoder_options(const PgsStreamConfig *config);
extern bool pgs_slot_lookup(const char *slot_name, bool *usable,
							XLogRecPtr *confirmed, XLogRecPtr *restart);
extern bool pgs_decoder_slot_exists(const PgsStreamConfig *config);
extern XLogRecPtr pgs_slot_replay_start(const char *slot_name);
extern void pgs_decoder_wait_for_slot(const char *slot_name);
extern PgsDecoder *pgs_decoder_start(const PgsStreamConfig *config,
									 PgsEventCallback callback, void *arg);
extern bool pgs_decoder_read(PgsDecoder *decoder, XLogRecPtr upto,
							 int max_records);
extern XLogRecPtr pgs_decoder_position(PgsDecoder *decoder);
extern XLogRecPtr pgs_decoder_confirmed(void);
extern void pgs_decoder_confirm(XLogRecPtr lsn);
extern void pgs_decoder_save(void);

#endif							/* PGS_DECODER_H */
