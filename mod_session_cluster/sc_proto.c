/* Licensed under the Apache License, Version 2.0 (see LICENSE).
 *
 * sc_proto.c -- encoders and checked decoders for the wire formats described in
 * sc_proto.h.  No allocation, no I/O: every decoder checks each length against
 * what it was given before reading.
 */
#include "sc_proto.h"

#include <string.h>

void sc_put16(unsigned char *p, apr_uint16_t v)
{
    p[0] = (unsigned char)(v >> 8);
    p[1] = (unsigned char)v;
}

void sc_put32(unsigned char *p, apr_uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

void sc_put64(unsigned char *p, apr_uint64_t v)
{
    sc_put32(p, (apr_uint32_t)(v >> 32));
    sc_put32(p + 4, (apr_uint32_t)v);
}

apr_uint16_t sc_get16(const unsigned char *p)
{
    return (apr_uint16_t)((p[0] << 8) | p[1]);
}

apr_uint32_t sc_get32(const unsigned char *p)
{
    return ((apr_uint32_t)p[0] << 24) | ((apr_uint32_t)p[1] << 16)
           | ((apr_uint32_t)p[2] << 8) | (apr_uint32_t)p[3];
}

apr_uint64_t sc_get64(const unsigned char *p)
{
    return ((apr_uint64_t)sc_get32(p) << 32) | sc_get32(p + 4);
}

void sc_frame_hdr_encode(const sc_frame_hdr *h, unsigned char *out)
{
    memcpy(out, SC_FRAME_MAGIC, 4);
    out[4] = SC_PROTO_VERSION;
    out[5] = h->type;
    sc_put16(out + 6, h->flags);
    memcpy(out + 8, h->sender, SC_ID_LEN);
    sc_put64(out + 24, h->seq);
    sc_put32(out + 32, h->length);
    sc_put16(out + 36, h->tag_length);
    sc_put16(out + 38, 0);
}

const char *sc_frame_hdr_decode(const unsigned char *buf, apr_size_t len,
                                apr_uint32_t max_payload, sc_frame_hdr *out)
{
    if (len < SC_FRAME_HDR_LEN) {
        return "truncated frame header";
    }
    if (memcmp(buf, SC_FRAME_MAGIC, 4) != 0) {
        return "bad frame magic";
    }
    if (buf[4] != SC_PROTO_VERSION) {
        return "unsupported protocol version";
    }
    if (buf[5] < 1 || buf[5] > SC_MSG_MAX) {
        return "unknown message type";
    }
    out->type = buf[5];
    out->flags = sc_get16(buf + 6);
    if (out->flags & ~SC_FF_KNOWN) {
        return "unknown frame flags";
    }
    memcpy(out->sender, buf + 8, SC_ID_LEN);
    out->seq = sc_get64(buf + 24);
    out->length = sc_get32(buf + 32);
    if (out->length > max_payload) {
        return "frame longer than the maximum message size";
    }
    out->tag_length = sc_get16(buf + 36);
    if (out->tag_length > SC_TAG_MAX) {
        return "authentication tag too long";
    }
    if ((out->tag_length != 0) != ((out->flags & SC_FF_TAGGED) != 0)) {
        return "authentication tag length and flag disagree";
    }
    if (sc_get16(buf + 38) != 0) {
        return "reserved header bytes are not zero";
    }
    return NULL;
}

apr_size_t sc_heartbeat_encode(const sc_heartbeat *hb, unsigned char *buf,
                               apr_size_t cap)
{
    apr_size_t rlen = strlen(hb->route);
    apr_size_t ulen = hb->has_ext ? strlen(hb->url) : 0;
    apr_size_t tlen = hb->has_ext ? SC_HB_EXT_FIXED + ulen : 0;
    apr_size_t need = SC_HB_FIXED_LEN + rlen + hb->domain_len + 2 + tlen;
    unsigned char *t;

    if (rlen < 1 || rlen > SC_ROUTE_MAX || hb->domain_len > SC_DOMAIN_MAX
        || ulen > SC_URL_MAX || (hb->family != 4 && hb->family != 6) || need > cap) {
        return 0;
    }
    memcpy(buf, SC_HB_MAGIC, 4);
    buf[4] = SC_PROTO_VERSION;
    buf[5] = hb->state;
    sc_put16(buf + 6, hb->flags);
    memcpy(buf + 8, hb->id, SC_ID_LEN);
    sc_put64(buf + 24, hb->incarnation);
    sc_put64(buf + 32, hb->alive_ms);
    sc_put64(buf + 40, hb->seq);
    sc_put16(buf + 48, hb->port);
    buf[50] = hb->family;
    buf[51] = (unsigned char)rlen;
    memcpy(buf + 52, hb->addr, 16);
    buf[68] = hb->domain_len;
    memcpy(buf + SC_HB_FIXED_LEN, hb->route, rlen);
    memcpy(buf + SC_HB_FIXED_LEN + rlen, hb->domain, hb->domain_len);
    sc_put16(buf + SC_HB_FIXED_LEN + rlen + hb->domain_len, (apr_uint16_t)tlen);
    if (tlen) {
        t = buf + SC_HB_FIXED_LEN + rlen + hb->domain_len + 2;
        t[0] = SC_HB_EXT_MARK;
        t[1] = (unsigned char)ulen;
        sc_put16(t + 2, hb->busy);
        sc_put16(t + 4, hb->capacity);
        sc_put32(t + 6, hb->sessions);
        memcpy(t + SC_HB_EXT_FIXED, hb->url, ulen);
    }
    return need;
}

const char *sc_heartbeat_decode(const unsigned char *buf, apr_size_t len,
                                sc_heartbeat *out)
{
    apr_size_t rlen, dlen, tlen, i;

    if (len < SC_HB_FIXED_LEN + 2) {
        return "truncated heartbeat";
    }
    if (memcmp(buf, SC_HB_MAGIC, 4) != 0) {
        return "bad heartbeat magic";
    }
    if (buf[4] != SC_PROTO_VERSION) {
        return "unsupported heartbeat version";
    }
    if (buf[5] < 1 || buf[5] > SC_MS_MAX) {
        return "unknown member state";
    }
    out->state = buf[5];
    out->flags = sc_get16(buf + 6);
    if (out->flags & ~SC_HF_KNOWN) {
        return "unknown heartbeat flags";
    }
    memcpy(out->id, buf + 8, SC_ID_LEN);
    out->incarnation = sc_get64(buf + 24);
    out->alive_ms = sc_get64(buf + 32);
    out->seq = sc_get64(buf + 40);
    out->port = sc_get16(buf + 48);
    if (out->port == 0) {
        return "receiver port 0";
    }
    out->family = buf[50];
    if (out->family != 4 && out->family != 6) {
        return "unknown address family";
    }
    rlen = buf[51];
    if (rlen < 1 || rlen > SC_ROUTE_MAX) {
        return "route length out of range";
    }
    memcpy(out->addr, buf + 52, 16);
    dlen = buf[68];
    if (dlen > SC_DOMAIN_MAX) {
        return "domain length out of range";
    }
    if (len < SC_HB_FIXED_LEN + rlen + dlen + 2) {
        return "truncated heartbeat";
    }
    for (i = 0; i < rlen; i++) {
        unsigned char c = buf[SC_HB_FIXED_LEN + i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
              || c == '-' || c == '_')) {
            return "route holds a character routes may not hold";
        }
    }
    memcpy(out->route, buf + SC_HB_FIXED_LEN, rlen);
    out->route[rlen] = '\0';
    memcpy(out->domain, buf + SC_HB_FIXED_LEN + rlen, dlen);
    out->domain_len = (apr_byte_t)dlen;
    tlen = sc_get16(buf + SC_HB_FIXED_LEN + rlen + dlen);
    if (tlen > SC_TAG_MAX) {
        return "authentication tag too long";
    }
    if (len != SC_HB_FIXED_LEN + rlen + dlen + 2 + tlen) {
        return "heartbeat length does not match its fields";
    }
    out->has_ext = 0;
    out->busy = out->capacity = 0;
    out->sessions = 0;
    out->url[0] = '\0';
    if (tlen >= SC_HB_EXT_FIXED && buf[SC_HB_FIXED_LEN + rlen + dlen + 2] == SC_HB_EXT_MARK) {
        const unsigned char *t = buf + SC_HB_FIXED_LEN + rlen + dlen + 2;
        apr_size_t ulen = t[1];
        if (ulen > SC_URL_MAX || SC_HB_EXT_FIXED + ulen > tlen) {
            return "heartbeat URL length out of range";
        }
        for (i = 0; i < ulen; i++) {
            if (t[SC_HB_EXT_FIXED + i] <= 0x20 || t[SC_HB_EXT_FIXED + i] >= 0x7f) {
                return "heartbeat URL holds a space or a character that is not printable";
            }
        }
        out->has_ext = 1;
        out->busy = sc_get16(t + 2);
        out->capacity = sc_get16(t + 4);
        out->sessions = sc_get32(t + 6);
        memcpy(out->url, t + SC_HB_EXT_FIXED, ulen);
        out->url[ulen] = '\0';
    }
    return NULL;
}

const char *sc_msg_type_name(int type)
{
    static const char *const names[] = {
        "?", "HELLO", "GOODBYE", "DATA", "ACK", "FAIL_ACK", "PING", "PONG"
    };
    return type >= 1 && type <= SC_MSG_MAX ? names[type] : "?";
}

const char *sc_member_state_name(int state)
{
    static const char *const names[] = {
        "?", "starting", "ready", "draining", "leaving", "restarting"
    };
    return state >= 1 && state <= SC_MS_MAX ? names[state] : "?";
}
