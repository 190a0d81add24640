/*
 * store_migrations.h - the list of schema migrations carried in the binary
 * (store_migrations.c); internal to the store.
 */
#ifndef PGR_STORE_MIGRATIONS_H
#define PGR_STORE_MIGRATIONS_H

#include <stddef.h>

typedef struct store_migration {
    int version;       /* 1, 2, ... strictly increasing */
    const char *name;  /* one line, shown by `db migrate` */
    const char *sql;   /* one or more statements, run in one transaction */
} store_migration;

/* The migrations in version order (static array); *n gets their count. */
const store_migration *store_migrations(size_t *n);

#endif
