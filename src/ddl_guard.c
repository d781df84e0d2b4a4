/*-------------------------------------------------------------------------
 *
 * ddl_guard.c
 *		Keeping streams consistent when the extension is dropped.
 *
 * DROP EXTENSION pgoutput_stream removes the table the streams live in.
 * Left alone, their workers would run on without a configuration and
 * their slots would retain WAL that nobody reads, for ever.  So before the
 * extension is dropped, every stream of the database is removed as by
 * drop_stream(): workers stopped, slots dropped at commit, and all of it
 * undone if the DROP rolls back.
 *
 * Copyright (c) 2026, pgoutput_stream developers
 *
 * IDENTIFICATION
 *		src/ddl_guard.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "commands/extension.h"
#include "nodes/parsenodes.h"
#include "tcop/utility.h"

#include "ddl_guard.h"
#include "sql_api.h"

static ProcessUtility_hook_type prev_process_utility = NULL;

/* Whether stmt drops this extension, and it is installed */
static bool
drops_this_extension(Node *stmt)
{
	DropStmt   *drop;
	ListCell   *lc;

	if (!IsA(stmt, DropStmt))
		return false;
	drop = (DropStmt *) stmt;
	if (drop->removeType != OBJECT_EXTENSION)
		return false;
	foreach(lc, drop->objects)
	{
		Node	   *object = (Node *) lfirst(lc);

		if (IsA(object, String) && strcmp(strVal(object), "pgoutput_stream") == 0)
			return OidIsValid(get_extension_oid("pgoutput_stream", true));
	}
	return false;
}

static void
pgs_process_utility(PlannedStmt *pstmt, const char *queryString,
					bool readOnlyTree, ProcessUtilityContext context,
					ParamListInfo params, QueryEnvironment *queryEnv,
					DestReceiver *dest, QueryCompletion *qc)
{
	if (drops_this_extension(pstmt->utilityStmt))
	{
		pgs_check_manager();
		pgs_remove_all_streams();
	}

	if (prev_process_utility)
		prev_process_utility(pstmt, queryString, readOnlyTree, context,
							 params, queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context,
								params, queryEnv, dest, qc);
}

/*
 * Install the hook.  Called from _PG_init.
 */
void
pgs_ddl_guard_init(void)
{
	prev_process_utility = ProcessUtility_hook;
	ProcessUtility_hook = pgs_process_utility;
}
