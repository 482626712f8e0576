/*
 * Hexadecimal digits, as protocols escape bytes with them: %XX in a URL
 * (http/keypath.c), \xHH in a quoted inline RESP argument (resp/parse.c).
 */
#ifndef CACHETTE_CMD_HEX_H
#define CACHETTE_CMD_HEX_H

/* The value of one hex digit, either case; -1 if c is not one. */
static inline int hex_digit_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

#endif
