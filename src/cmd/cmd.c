/*
 * cmd - dispatch table (filled in as commands land).
 */
#include "cmd/cmd.h"

#include <stdio.h>

#include "core/banned.h"

int cmd_main(int argc, char **argv)
{
    (void)argv;
    if (argc < 2) {
        fprintf(stderr, "usage: refold COMMAND [options]\n");
        return EXIT_USAGE;
    }
    return EXIT_USAGE;
}
