/*
 * httpd.h: the small HTTP servers of chargeflow (the metrics endpoint and
 * `chargeflow registry`), on libmicrohttpd with one internal thread that
 * serves the requests one at a time.
 */
#ifndef CF_HTTPD_H
#define CF_HTTPD_H

#include <stddef.h>

#include "err.h"
#include "mem.h"

struct MHD_Connection;
typedef struct cf_httpd cf_httpd;

/* A request, complete with its body. Fills *status and out (the body) and
 * returns the Content-Type (a literal). Runs on the server's thread. */
typedef const char *(cf_httpd_handler)(void *opaque, const char *method,
                                       const char *path,
                                       struct MHD_Connection *conn,
                                       const char *body, size_t body_len,
                                       int *status, cf_buf *out);

/*
 * Starts a server on listen ("host:port", IPv4 address or name; port 0: any
 * free port) calling fn for each request; with tls_cert and tls_key (PEM
 * texts, both or neither: NULL) it serves HTTPS. Sets *hp to the server
 * and *portp to the bound port, or returns CF_ERR_IO with errstr naming the
 * address. Stop it with cf_httpd_stop().
 */
cf_err_t cf_httpd_start(const char *listen, cf_httpd_handler *fn, void *opaque,
                        const char *tls_cert, const char *tls_key, int *portp,
                        cf_httpd **hp, char *errstr, size_t errstr_size);

/* Stops h and frees it (NULL is a no-op); no handler runs after it returns. */
void cf_httpd_stop(cf_httpd *h);

/* A query argument of the request, or NULL. */
const char *cf_httpd_arg(struct MHD_Connection *conn, const char *key);

/* True when the request carries HTTP basic credentials equal to
 * user_info ("user:password"). */
int cf_httpd_basic_auth_ok(struct MHD_Connection *conn, const char *user_info);

#endif
