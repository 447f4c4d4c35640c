# Startup file of the embedded runtime's bash (bash --noprofile --rcfile <this file>).
#
# It reads the user's ~/.bashrc as bash would, then adds OSC 133 semantic prompt marks so a
# recording can tell prompts, command lines, output and exit statuses apart:
#   ESC ] 133 ; A BEL      prompt start          (start of PS1)
#   ESC ] 133 ; B BEL      prompt end / command start   (end of PS1)
#   ESC ] 133 ; C BEL      command output start  (PS0, after a line is read, before it runs)
#   ESC ] 133 ; D ; N BEL  command end, exit status N (first thing PROMPT_COMMAND does)
# The marks are invisible control strings; what the user sees does not change.
# RECORDER_RUNTIME_NO_USER_RC=1 skips ~/.bashrc, so tests and benchmarks do not depend on (or
# wait for) whatever the machine's user startup file does.

if [ -z "${RECORDER_RUNTIME_NO_USER_RC:-}" ] && [ -f "$HOME/.bashrc" ]; then
    . "$HOME/.bashrc"
fi

if [ -z "${__recorder_osc133:-}" ]; then
    __recorder_osc133=1
    __recorder_ran=

    # First in PROMPT_COMMAND: report how the command ended, but only when one ran (an empty
    # line expands no PS0), then hand the same $? on to the user's own prompt commands.
    __recorder_osc133_precmd() {
        local status=$?
        if [ -n "$__recorder_ran" ]; then
            printf '\033]133;D;%s\007' "$status"
            __recorder_ran=
        fi
        return "$status"
    }

    # Last in PROMPT_COMMAND: wrap PS1 in the A and B marks again if the user's prompt
    # commands replaced it. \[ \] keep readline's idea of the prompt width right.
    __recorder_osc133_prompt() {
        local status=$?
        if [ "$PS1" != "${__recorder_ps1:-}" ]; then
            __recorder_ps1='\[\033]133;A\007\]'"$PS1"'\[\033]133;B\007\]'
            PS1=$__recorder_ps1
        fi
        return "$status"
    }

    # PS0 is expanded in the shell itself, so the arithmetic in the (empty) array subscript sets
    # the flag without printing anything; \[ \] must not be used here (PS0 is not a readline prompt).
    PS0='${__recorder_ps0_unused[__recorder_ran=1]:-}\033]133;C\007'"${PS0:-}"

    if [[ "$(declare -p PROMPT_COMMAND 2>/dev/null)" == "declare -a"* ]]; then
        PROMPT_COMMAND=(__recorder_osc133_precmd "${PROMPT_COMMAND[@]}" __recorder_osc133_prompt)
    else
        PROMPT_COMMAND="__recorder_osc133_precmd${PROMPT_COMMAND:+$'\n'$PROMPT_COMMAND}"$'\n'__recorder_osc133_prompt
    fi
fi
