/*
 * refold - entry point. Parses the command name and dispatches through the
 * command table in cmd/cmd.c (git's git.c pattern); everything else lives in
 * the modules under src/.
 */
#include "cmd/cmd.h"

int main(int argc, char **argv)
{
    return cmd_main(argc, argv);
}
