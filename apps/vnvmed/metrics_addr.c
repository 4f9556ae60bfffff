/* SPDX-License-Identifier: MIT */
/*
 * The --metrics argument. Without an address the endpoint is bound to
 * 127.0.0.1: figures about every VM's disk are nobody else's business unless
 * the operator says so (0.0.0.0, or [::]).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"

static int parse_port(const char *s, uint16_t *port, const char **why)
{
    unsigned long v = 0;
    if (!*s) {
        *why = "no port";
        return -EINVAL;
    }
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9' || (v = v * 10 + (unsigned long)(*p - '0')) > 65535) {
            *why = "the port must be a number from 1 to 65535";
            return -EINVAL;
        }
    }
    if (v == 0) {
        *why = "the port must be a number from 1 to 65535";
        return -EINVAL;
    }
    *port = (uint16_t)v;
    return 0;
}

int metrics_parse_address(const char *arg, struct sockaddr_storage *out, socklen_t *len, const char **why)
{
    static const char *const brackets = "an IPv6 address goes in brackets: [::1]:PORT";
    char host[64] = "";
    const char *port_text = arg, *colon = strrchr(arg, ':');
    bool v6 = arg[0] == '[';
    memset(out, 0, sizeof(*out));
    if (v6) {
        const char *end = strchr(arg, ']');
        if (!end || (size_t)(end - arg - 1) >= sizeof(host)) {
            *why = brackets;
            return -EINVAL;
        }
        if (end[1] != ':') {
            *why = "a port must follow the address: [::1]:PORT";
            return -EINVAL;
        }
        memcpy(host, arg + 1, (size_t)(end - arg - 1));
        host[end - arg - 1] = '\0';
        port_text = end + 2;
    } else if (colon) {
        if (strchr(arg, ':') != colon) {
            *why = brackets;
            return -EINVAL;
        }
        if ((size_t)(colon - arg) >= sizeof(host)) {
            *why = "not an IPv4 address";
            return -EINVAL;
        }
        memcpy(host, arg, (size_t)(colon - arg));
        host[colon - arg] = '\0';
        port_text = colon + 1;
    }
    uint16_t port;
    if (parse_port(port_text, &port, why))
        return -EINVAL;
    if (v6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)out;
        if (inet_pton(AF_INET6, host, &a->sin6_addr) != 1) {
            *why = "not an IPv6 address";
            return -EINVAL;
        }
        a->sin6_family = AF_INET6;
        a->sin6_port = htons(port);
        *len = sizeof(*a);
        return 0;
    }
    struct sockaddr_in *a = (struct sockaddr_in *)out;
    if (inet_pton(AF_INET, host[0] ? host : "127.0.0.1", &a->sin_addr) != 1) {
        *why = "not an IPv4 address, and names are not resolved";
        return -EINVAL;
    }
    a->sin_family = AF_INET;
    a->sin_port = htons(port);
    *len = sizeof(*a);
    return 0;
}

void metrics_format_address(const struct sockaddr *sa, char *buf, size_t size)
{
    char host[INET6_ADDRSTRLEN];
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
        snprintf(buf, size, "[%s]:%u", host, (unsigned)ntohs(a->sin6_port));
    } else {
        const struct sockaddr_in *a = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
        snprintf(buf, size, "%s:%u", host, (unsigned)ntohs(a->sin_port));
    }
}
