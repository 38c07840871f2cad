/* httpd.c: small HTTP servers on libmicrohttpd (see httpd.h). */
#include "httpd.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct srv {
        cf_httpd_handler *fn;
        void *opaque;
} srv;

struct cf_httpd {
        struct MHD_Daemon *d;
        srv s;
};

/* The body of a request being received. */
typedef struct req {
        cf_buf body;
} req;

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn,
                                  const char *url, const char *method,
                                  const char *version, const char *data,
                                  size_t *data_size, void **con_cls)
{
        srv *s = cls;
        req *r = *con_cls;
        (void)version;
        if (!r) {
                r = cf_calloc(1, sizeof(*r));
                cf_buf_init(&r->body);
                *con_cls = r;
                return MHD_YES;
        }
        if (*data_size) {
                if (r->body.len + *data_size <= (1u << 20))
                        cf_buf_put(&r->body, data, *data_size);
                *data_size = 0;
                return MHD_YES;
        }
        cf_buf out;
        int status = 500;
        cf_buf_init(&out);
        cf_buf_putc(&r->body, '\0');
        const char *type =
            s->fn(s->opaque, method, url, conn, (const char *)r->body.p,
                  r->body.len - 1, &status, &out);
        struct MHD_Response *resp = MHD_create_response_from_buffer(
            out.len, out.p, MHD_RESPMEM_MUST_COPY);
        cf_buf_free(&out);
        MHD_add_response_header(resp, "Content-Type", type);
        enum MHD_Result ret;
        if (status == 401) {
                ret = MHD_queue_basic_auth_fail_response(conn, "chargeflow",
                                                         resp);
        } else {
                ret = MHD_queue_response(conn, (unsigned)status, resp);
        }
        MHD_destroy_response(resp);
        return ret;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
        req *r = *con_cls;
        (void)cls;
        (void)conn;
        (void)toe;
        if (r) {
                cf_buf_free(&r->body);
                free(r);
                *con_cls = NULL;
        }
}

cf_err_t cf_httpd_start(const char *listen, cf_httpd_handler *fn, void *opaque,
                        const char *tls_cert, const char *tls_key, int *portp,
                        cf_httpd **hp, char *errstr, size_t errstr_size)
{
        char host[256];
        const char *colon = strrchr(listen, ':');
        struct sockaddr_in sa;
        if (!colon || (size_t)(colon - listen) >= sizeof(host)) {
                snprintf(errstr, errstr_size, "%s: expected host:port", listen);
                return CF_ERR_IO;
        }
        memcpy(host, listen, (size_t)(colon - listen));
        host[colon - listen] = '\0';
        memset(&sa, 0, sizeof(sa));
        sa.sin_family = AF_INET;
        sa.sin_port = htons((uint16_t)atoi(colon + 1));
        if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
                struct addrinfo hints = { .ai_family = AF_INET }, *ai = NULL;
                if (getaddrinfo(host, NULL, &hints, &ai) || !ai) {
                        snprintf(errstr, errstr_size,
                                 "%s: cannot resolve host '%s'", listen, host);
                        return CF_ERR_IO;
                }
                sa.sin_addr = ((struct sockaddr_in *)ai->ai_addr)->sin_addr;
                freeaddrinfo(ai);
        }
        cf_httpd *h = cf_calloc(1, sizeof(*h));
        srv *s = &h->s;
        s->fn = fn;
        s->opaque = opaque;
        unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
        struct MHD_Daemon *d;
        if (tls_cert && tls_key)
                d = MHD_start_daemon(
                    flags | MHD_USE_TLS, 0, NULL, NULL, on_request, s,
                    MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                    MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
                    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30,
                    MHD_OPTION_HTTPS_MEM_CERT, tls_cert,
                    MHD_OPTION_HTTPS_MEM_KEY, tls_key, MHD_OPTION_END);
        else
                d = MHD_start_daemon(
                    flags, 0, NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR,
                    (struct sockaddr *)&sa, MHD_OPTION_NOTIFY_COMPLETED,
                    on_completed, NULL, MHD_OPTION_CONNECTION_TIMEOUT,
                    (unsigned)30, MHD_OPTION_END);
        if (!d) {
                snprintf(errstr, errstr_size,
                         "%s: cannot listen (address in use, not local, or "
                         "a bad TLS certificate or key?)",
                         listen);
                free(h);
                return CF_ERR_IO;
        }
        h->d = d;
        const union MHD_DaemonInfo *info =
            MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
        *portp = info ? info->port : atoi(colon + 1);
        *hp = h;
        return CF_OK;
}

void cf_httpd_stop(cf_httpd *h)
{
        if (!h)
                return;
        MHD_stop_daemon(h->d);
        free(h);
}

const char *cf_httpd_arg(struct MHD_Connection *conn, const char *key)
{
        return MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, key);
}

int cf_httpd_basic_auth_ok(struct MHD_Connection *conn, const char *user_info)
{
        char *pass = NULL;
        char *user = MHD_basic_auth_get_username_password(conn, &pass);
        const char *colon = strchr(user_info, ':');
        int ok = 0;
        if (user && pass && colon &&
            strlen(user) == (size_t)(colon - user_info) &&
            !strncmp(user, user_info, (size_t)(colon - user_info)) &&
            !strcmp(pass, colon + 1))
                ok = 1;
        MHD_free(user);
        MHD_free(pass);
        return ok;
}
