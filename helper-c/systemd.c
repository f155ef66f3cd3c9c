/* A small D-Bus client for the three calls of systemd's manager that a
 * job's scope needs (StartTransientUnit, StopUnit, ResetFailedUnit) and
 * the one signal that says a job of systemd's ended (JobRemoved). It talks
 * on systemd's private socket: a direct connection for root, no bus
 * daemon, no Hello, and systemd sends such a connection every signal of
 * its manager, unasked. Messages go out in this machine's byte order;
 * replies in the other are refused. Every length read off the socket is
 * checked against what was read, every wait is bounded. */
#define _GNU_SOURCE
#include "systemd.h"
#include "util.h"
#include "wire.h"
#include <errno.h>
#include <regex.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* The socket and the bounds below are constants of the helper's bytes:
 * build/build.mjs defines none of them, so nothing a job, the CLI or the
 * environment says at run time points the helper at another socket. Only
 * the unit test of this client (test/unit/systemd-client.test.ts) compiles
 * it with -DSYSTEMD_SOCKET=<its fake systemd's socket> and shorter bounds. */
#ifndef SYSTEMD_SOCKET
#define SYSTEMD_SOCKET "/run/systemd/private"
#endif
_Static_assert(sizeof SYSTEMD_SOCKET <= sizeof ((struct sockaddr_un *)0)->sun_path, "SYSTEMD_SOCKET fits a socket address");
/* How long one conversation may take: systemd answers in milliseconds on a
 * VM, in seconds on an emulated one that is busy. A stop waits less: what
 * systemd has not removed by then, cgroup.c does. */
#ifndef START_TIMEOUT_MS
#define START_TIMEOUT_MS 60000ULL
#endif
#ifndef STOP_TIMEOUT_MS
#define STOP_TIMEOUT_MS 20000ULL
#endif
/* How often a start meets a scope of its name that is still going away. */
#define EXISTS_RETRIES 100
/* The largest message built or kept; a larger one (a signal about some
 * other unit) is read past. */
#define MAX_MESSAGE (256u << 10)
/* systemd's side of the connection may read our first call in one piece
 * with the BEGIN before it, and then leave it unread until more bytes
 * arrive (seen: 17 s). A Ping after this long without an answer is those
 * bytes; its reply is not waited for. */
#define NUDGE_MS 100

#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define OUR_ENDIAN 'l'
#else
#define OUR_ENDIAN 'B'
#endif

enum { METHOD_CALL = 1, METHOD_RETURN = 2, ERROR = 3, SIGNAL = 4 };
enum { F_PATH = 1, F_INTERFACE = 2, F_MEMBER = 3, F_ERROR_NAME = 4, F_REPLY_SERIAL = 5, F_DESTINATION = 6, F_SIGNATURE = 8 };

#define RING 16
struct bus {
    int fd;
    uint32_t serial;
    unsigned long long deadline;  /* CLOCK_MONOTONIC, ms */
    unsigned char *msg;           /* MAX_MESSAGE bytes: the message being built or read */
    /* Jobs systemd said had ended, kept until we ask for them: the signal
     * may come before the reply that names the job. */
    struct { char path[128], result[32]; } ended[RING];
    unsigned n_ended;
    int running;  /* authenticated: messages may go */
};

static unsigned long long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (unsigned long long)ts.tv_sec * 1000ULL + (unsigned long long)ts.tv_nsec / 1000000ULL;
}

static void nudge(struct bus *b);

/* Waits until fd is ready for events, or the deadline: 0, or -1 with errno.
 * Waiting for an answer, it nudges systemd every NUDGE_MS. */
static int ready(struct bus *b, short events) {
    for (;;) {
        unsigned long long now = now_ms();
        if (now >= b->deadline) { errno = ETIMEDOUT; return -1; }
        unsigned long long wait = b->deadline - now;
        if ((events & POLLIN) && wait > NUDGE_MS) wait = NUDGE_MS;
        struct pollfd p = {.fd = b->fd, .events = events};
        int r = poll(&p, 1, (int)wait);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return -1;
        if (r > 0) return 0;
        if (events & POLLIN) nudge(b);
    }
}

static int bus_send(struct bus *b, const void *data, size_t len) {
    const char *p = data;
    while (len) {
        if (ready(b, POLLOUT)) return -1;
        ssize_t n = send(b->fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        if (n < 0) return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int bus_recv(struct bus *b, void *data, size_t len) {
    char *p = data;
    while (len) {
        if (ready(b, POLLIN)) return -1;
        ssize_t n = recv(b->fd, p, len, MSG_DONTWAIT);
        if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        if (n == 0) errno = ECONNRESET;
        if (n <= 0) return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* ---- writing a message ---- */

struct out { unsigned char *p; size_t len, cap; int bad; };

static void put(struct out *o, const void *d, size_t n) {
    if (o->bad || n > o->cap - o->len) { o->bad = 1; return; }
    memcpy(o->p + o->len, d, n);
    o->len += n;
}
static void align_out(struct out *o, size_t a) {
    static const unsigned char zero[8];
    put(o, zero, (a - o->len % a) % a);
}
static void put_u8(struct out *o, uint8_t v) { put(o, &v, 1); }
static void put_u32(struct out *o, uint32_t v) { align_out(o, 4); put(o, &v, 4); }
static void put_u64(struct out *o, uint64_t v) { align_out(o, 8); put(o, &v, 8); }
static void put_str(struct out *o, const char *s) {
    size_t n = strlen(s);
    if (n > o->cap) { o->bad = 1; return; }
    put_u32(o, (uint32_t)n);
    put(o, s, n + 1);
}
static void put_sig(struct out *o, const char *s) {
    size_t n = strlen(s);
    if (n > 255) { o->bad = 1; return; }
    put_u8(o, (uint8_t)n);
    put(o, s, n + 1);
}
/* An array: its length is written once its elements are (the padding
 * before the first element is not counted). */
struct array { size_t length_at, start; };
static struct array array_open(struct out *o, size_t element_align) {
    put_u32(o, 0);
    struct array a = {o->len - 4, 0};
    align_out(o, element_align);
    a.start = o->len;
    return a;
}
static void array_close(struct out *o, struct array a) {
    if (o->bad) return;
    uint32_t n = (uint32_t)(o->len - a.start);
    memcpy(o->p + a.length_at, &n, 4);
}
static void header_field(struct out *o, uint8_t code, const char *type, const char *value) {
    align_out(o, 8);
    put_u8(o, code);
    put_sig(o, type);
    if (type[0] == 'g') put_sig(o, value);
    else put_str(o, value);
}

/* A method call's header (and the start of its body) into o. */
static size_t call_header(struct out *o, uint32_t serial, const char *interface, const char *member, const char *signature) {
    put_u8(o, OUR_ENDIAN);
    put_u8(o, METHOD_CALL);
    put_u8(o, 0);
    put_u8(o, 1);
    put_u32(o, 0); /* the body's length, once it is written */
    put_u32(o, serial);
    struct array fields = array_open(o, 8);
    header_field(o, F_PATH, "o", "/org/freedesktop/systemd1");
    header_field(o, F_INTERFACE, "s", interface);
    header_field(o, F_MEMBER, "s", member);
    header_field(o, F_DESTINATION, "s", "org.freedesktop.systemd1");
    if (signature[0]) header_field(o, F_SIGNATURE, "g", signature);
    array_close(o, fields);
    align_out(o, 8);
    return o->len;
}

static void set_body_length(struct out *o, size_t body) {
    uint32_t body_len = (uint32_t)(o->len - body);
    if (!o->bad) memcpy(o->p + 4, &body_len, 4);
}

/* Sends a call of systemd's manager whose body fill writes; returns its
 * serial, or 0 with errno. */
static uint32_t call(struct bus *b, const char *member, const char *signature, void (*fill)(struct out *, const void *), const void *arg) {
    struct out o = {b->msg, 0, MAX_MESSAGE, 0};
    uint32_t serial = ++b->serial;
    size_t body = call_header(&o, serial, "org.freedesktop.systemd1.Manager", member, signature);
    fill(&o, arg);
    set_body_length(&o, body);
    if (o.bad) { errno = EMSGSIZE; return 0; }
    return bus_send(b, o.p, o.len) ? 0 : serial;
}

/* A Ping (its own buffer: b->msg may hold half a message being read). */
static void nudge(struct bus *b) {
    if (!b->running) return;
    unsigned char buf[256];
    struct out o = {buf, 0, sizeof buf, 0};
    size_t body = call_header(&o, ++b->serial, "org.freedesktop.DBus.Peer", "Ping", "");
    set_body_length(&o, body);
    if (!o.bad) bus_send(b, o.p, o.len);
}

/* ---- reading a message ---- */

struct in { const unsigned char *p; size_t len, at; int bad; };

static void align_in(struct in *i, size_t a) {
    size_t at = (i->at + a - 1) & ~(a - 1);
    if (at > i->len) i->bad = 1;
    else i->at = at;
}
static uint8_t get_u8(struct in *i) {
    if (i->bad || i->at >= i->len) { i->bad = 1; return 0; }
    return i->p[i->at++];
}
static uint32_t get_u32(struct in *i) {
    align_in(i, 4);
    if (i->bad || i->len - i->at < 4) { i->bad = 1; return 0; }
    uint32_t v;
    memcpy(&v, i->p + i->at, 4);
    i->at += 4;
    return v;
}
/* A string of n bytes and its NUL at the cursor, or "" (and bad). */
static const char *get_bytes(struct in *i, size_t n) {
    if (i->bad || n >= i->len - i->at || i->p[i->at + n] != '\0' || memchr(i->p + i->at, '\0', n)) { i->bad = 1; return ""; }
    const char *s = (const char *)i->p + i->at;
    i->at += n + 1;
    return s;
}
static const char *get_str(struct in *i) { uint32_t n = get_u32(i); return i->bad ? "" : get_bytes(i, n); }
static const char *get_sig(struct in *i) { uint8_t n = get_u8(i); return i->bad ? "" : get_bytes(i, n); }

struct message {
    uint8_t type;
    uint32_t reply_serial;
    const char *member, *error_name, *signature;
    struct in body;
};

/* The next message: 1 and m, 0 for one too large that was read past, -1 with errno. */
static int next_message(struct bus *b, struct message *m) {
    unsigned char head[16];
    if (bus_recv(b, head, sizeof head)) return -1;
    if (head[0] != OUR_ENDIAN || head[3] != 1) { errno = EPROTO; return -1; }
    uint32_t body_len, fields_len;
    memcpy(&body_len, head + 4, 4);
    memcpy(&fields_len, head + 12, 4);
    /* D-Bus bounds a message at 128 MiB; both lengths are within it, so this does not overflow. */
    if (body_len > (128u << 20) || fields_len > (64u << 20)) { errno = EPROTO; return -1; }
    size_t body = (16 + (size_t)fields_len + 7) & ~(size_t)7, total = body + body_len;
    if (total > MAX_MESSAGE) {
        for (size_t left = total - sizeof head; left;) {
            size_t n = left < MAX_MESSAGE ? left : MAX_MESSAGE;
            if (bus_recv(b, b->msg, n)) return -1;
            left -= n;
        }
        return 0;
    }
    memcpy(b->msg, head, sizeof head);
    if (bus_recv(b, b->msg + sizeof head, total - sizeof head)) return -1;
    memset(m, 0, sizeof *m);
    m->type = head[1];
    struct in h = {b->msg, 16 + (size_t)fields_len, 16, 0};
    while (!h.bad && h.at < h.len) {
        align_in(&h, 8);
        uint8_t code = get_u8(&h);
        const char *type = get_sig(&h), *s = NULL;
        uint32_t u = 0;
        if (!strcmp(type, "s") || !strcmp(type, "o")) s = get_str(&h);
        else if (!strcmp(type, "g")) s = get_sig(&h);
        else if (!strcmp(type, "u")) u = get_u32(&h);
        else h.bad = 1;
        if (code == F_MEMBER) m->member = s;
        else if (code == F_ERROR_NAME) m->error_name = s;
        else if (code == F_SIGNATURE) m->signature = s;
        else if (code == F_REPLY_SERIAL) m->reply_serial = u;
    }
    if (h.bad) { errno = EPROTO; return -1; }
    m->body = (struct in){b->msg, total, body, 0};
    return 1;
}

/* Keeps what a JobRemoved signal says (job path, result); other messages are no concern of ours. */
static void note(struct bus *b, struct message *m) {
    if (m->type != SIGNAL || !m->member || strcmp(m->member, "JobRemoved") || !m->signature || strcmp(m->signature, "uoss")) return;
    get_u32(&m->body);
    const char *job = get_str(&m->body);
    get_str(&m->body); /* the unit */
    const char *result = get_str(&m->body);
    if (m->body.bad || strlen(job) >= sizeof b->ended[0].path || strlen(result) >= sizeof b->ended[0].result) return;
    unsigned slot = b->n_ended++ % RING;
    strcpy(b->ended[slot].path, job);
    strcpy(b->ended[slot].result, result);
}

/* The reply to call serial: 0 (and the job it returned, if job), or -1 with
 * systemd's error, or ours, in err. */
static int reply(struct bus *b, uint32_t serial, char *job, size_t job_cap, char *err, size_t err_cap) {
    if (job) job[0] = '\0';
    for (;;) {
        struct message m;
        int r = next_message(b, &m);
        if (r < 0) { snprintf(err, err_cap, "reading systemd's answer: %s", strerror(errno)); return -1; }
        if (r == 0) continue;
        note(b, &m);
        if ((m.type != METHOD_RETURN && m.type != ERROR) || m.reply_serial != serial) continue;
        if (m.type == ERROR) {
            const char *text = m.signature && m.signature[0] == 's' ? get_str(&m.body) : "";
            snprintf(err, err_cap, "%s%s%s", m.error_name ? m.error_name : "an error", *text ? ": " : "", text);
            return -1;
        }
        if (job) {
            const char *path = m.signature && !strcmp(m.signature, "o") ? get_str(&m.body) : "";
            if (m.body.bad || !*path || strlen(path) >= job_cap) {
                snprintf(err, err_cap, "systemd's answer names no job it queued");
                return -1;
            }
            strcpy(job, path);
        }
        return 0;
    }
}

/* Waits for systemd to say that job ended: 0 and its result ("done",
 * "failed", "canceled"...), or -1 with why in err. */
static int job_ended(struct bus *b, const char *job, char *result, size_t cap, char *err, size_t err_cap) {
    for (;;) {
        for (unsigned i = 0; i < RING && i < b->n_ended; i++)
            if (!strcmp(b->ended[i].path, job)) {
                snprintf(result, cap, "%s", b->ended[i].result);
                return 0;
            }
        struct message m;
        int r = next_message(b, &m);
        if (r < 0) { snprintf(err, err_cap, "waiting for systemd's job %s: %s", job, strerror(errno)); return -1; }
        if (r > 0) note(b, &m);
    }
}

/* Connects and authenticates as ourselves (EXTERNAL: systemd reads our uid off the socket). */
static int bus_open(struct bus *b, unsigned long long timeout_ms, char *why, size_t cap) {
    memset(b, 0, sizeof *b);
    b->deadline = now_ms() + timeout_ms;
    b->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    b->msg = malloc(MAX_MESSAGE);
    if (b->fd < 0 || !b->msg) {
        snprintf(why, cap, "talking to systemd: %s", strerror(errno));
        goto fail;
    }
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    strcpy(addr.sun_path, SYSTEMD_SOCKET);
    /* A listener with a full backlog says EAGAIN: tried again until the deadline. */
    while (connect(b->fd, (struct sockaddr *)&addr, sizeof addr)) {
        if (errno == EINTR || (errno == EAGAIN && now_ms() < b->deadline)) {
            usleep(10000);
            continue;
        }
        snprintf(why, cap, "connect to systemd at %s: %s", SYSTEMD_SOCKET, strerror(errno));
        goto fail;
    }
    char auth[64] = "\0AUTH EXTERNAL ", uid[16];
    size_t n = 15;
    snprintf(uid, sizeof uid, "%u", (unsigned)getuid());
    for (const char *c = uid; *c; c++) n += (size_t)snprintf(auth + n, sizeof auth - n, "%02x", (unsigned char)*c);
    n += (size_t)snprintf(auth + n, sizeof auth - n, "\r\n");
    char line[256];
    size_t got = 0;
    if (bus_send(b, auth, n)) goto io;
    /* "OK <guid>\r\n", and nothing more until we BEGIN. */
    while (got < 2 || memcmp(line + got - 2, "\r\n", 2)) {
        if (got >= sizeof line - 1) errno = EPROTO;
        if (got >= sizeof line - 1 || bus_recv(b, line + got, 1)) goto io;
        got++;
    }
    line[got - 2] = '\0';
    if (strncmp(line, "OK ", 3)) {
        snprintf(why, cap, "systemd refused us at %s: %.100s", SYSTEMD_SOCKET, line);
        goto fail;
    }
    if (bus_send(b, "BEGIN\r\n", 7)) goto io;
    b->running = 1;
    return 0;
io:
    snprintf(why, cap, "talking to systemd at %s: %s", SYSTEMD_SOCKET, strerror(errno));
fail:
    if (b->fd >= 0) close(b->fd);
    free(b->msg);
    b->fd = -1;
    b->msg = NULL;
    return -1;
}

static void bus_close(struct bus *b) {
    close(b->fd);
    free(b->msg);
}

/* ---- the calls ---- */

struct start_args { const struct cgroup_plan *cg; pid_t pid; };

/* StartTransientUnit(name, mode, properties a(sv), auxiliary units a(sa(sv))). */
static void fill_start(struct out *o, const void *arg) {
    const struct start_args *a = arg;
    put_str(o, a->cg->scope);
    put_str(o, "fail");
    struct array props = array_open(o, 8);
    for (int i = 0; i < a->cg->n_props; i++) {
        const struct cgprop *p = &a->cg->props[i];
        align_out(o, 8);
        put_str(o, p->name);
        char type[2] = {p->type, '\0'};
        put_sig(o, type);
        if (p->type == 'b') put_u32(o, !strcmp(p->value, "true"));
        else if (p->type == 't') put_u64(o, p->number);
        else put_str(o, p->value);
    }
    /* The job's init: systemd moves it into the scope in every hierarchy. */
    align_out(o, 8);
    put_str(o, "PIDs");
    put_sig(o, "au");
    struct array pids = array_open(o, 4);
    put_u32(o, (uint32_t)a->pid);
    array_close(o, pids);
    array_close(o, props);
    array_close(o, array_open(o, 8));
}

/* StopUnit(name, mode). */
static void fill_stop(struct out *o, const void *unit) {
    put_str(o, unit);
    put_str(o, "replace");
}

/* ResetFailedUnit(name). */
static void fill_name(struct out *o, const void *unit) { put_str(o, unit); }

/* Stops unit and forgets its failure; what systemd says is not our concern. */
static void stop_unit(struct bus *b, const char *unit) {
    char job[128], result[32], err[512];
    uint32_t serial = call(b, "StopUnit", "ss", fill_stop, unit);
    if (serial && !reply(b, serial, job, sizeof job, err, sizeof err) && job[0]) job_ended(b, job, result, sizeof result, err, sizeof err);
    serial = call(b, "ResetFailedUnit", "s", fill_name, unit);
    if (serial) reply(b, serial, NULL, 0, err, sizeof err);
}

static int starts_with(const char *s, const char *prefix) { return !strncmp(s, prefix, strlen(prefix)); }

int scope_name_ok(const char *unit) {
    static regex_t re;
    static int compiled;
    if (!compiled && regcomp(&re, SCOPE_NAME_PATTERN, REG_EXTENDED | REG_NOSUB)) return 0;
    compiled = 1;
    return strlen(unit) <= 255 && !regexec(&re, unit, 0, NULL, 0);
}

int scope_start(const struct cgroup_plan *cg, pid_t pid, char *why, size_t cap) {
    struct bus b;
    if (bus_open(&b, START_TIMEOUT_MS, why, cap)) return -1;
    struct start_args args = {cg, pid};
    char job[128], result[32], err[512];
    int r = -1;
    for (int attempt = 0;; attempt++) {
        uint32_t serial = call(&b, "StartTransientUnit", "ssa(sv)a(sa(sv))", fill_start, &args);
        if (!serial) {
            snprintf(why, cap, "asking systemd for scope %s: %s", cg->scope, strerror(errno));
            break;
        }
        if (!reply(&b, serial, job, sizeof job, err, sizeof err)) {
            if (job_ended(&b, job, result, sizeof result, err, sizeof err)) snprintf(why, cap, "%s", err);
            else if (strcmp(result, "done")) snprintf(why, cap, "systemd could not start scope %s (job %s)", cg->scope, result);
            else r = 0;
            break;
        }
        /* A scope of this name that a killed start left, or one systemd has
         * not collected yet: stopped and forgotten, then asked for again. */
        if (starts_with(err, "org.freedesktop.systemd1.UnitExists") && attempt < EXISTS_RETRIES && now_ms() < b.deadline) {
            stop_unit(&b, cg->scope);
            if (attempt) usleep(20000);
            continue;
        }
        snprintf(why, cap, "systemd did not start scope %s: %s", cg->scope, err);
        break;
    }
    bus_close(&b);
    return r;
}

void scope_stop(const char *unit) {
    struct bus b;
    char why[256];
    if (bus_open(&b, STOP_TIMEOUT_MS, why, sizeof why)) return;
    stop_unit(&b, unit);
    bus_close(&b);
}
