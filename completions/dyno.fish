# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_dyno_global_optspecs
    string join \n h/help V/version
end

function __fish_dyno_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_dyno_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_dyno_using_subcommand
    set -l cmd (__fish_dyno_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c dyno -n "__fish_dyno_needs_command" -s h -l help -d 'Print help'
complete -c dyno -n "__fish_dyno_needs_command" -s V -l version -d 'Print version'
complete -c dyno -n "__fish_dyno_needs_command" -f -a "up" -d 'Build the current directory and run it: create the app if needed, build, release, scale'
complete -c dyno -n "__fish_dyno_needs_command" -f -a "apps" -d 'List your apps'
complete -c dyno -n "__fish_dyno_needs_command" -f -a "apps:create" -d 'Create an app (a random name when none is given)'
complete -c dyno -n "__fish_dyno_needs_command" -f -a "apps:info" -d 'Show an app\'s details'
complete -c dyno -n "__fish_dyno_needs_command" -f -a "apps:destroy" -d 'Destroy an app and everything of it'
complete -c dyno -n "__fish_dyno_needs_command" -f -a "apps:rename" -d 'Rename an app'
complete -c dyno -n "__fish_dyno_needs_command" -f -a "ps" -d 'List the app\'s dynos'
complete -c dyno -n "__fish_dyno_needs_command" -f -a "ps:scale" -d 'Scale process types: `web=3 worker=1`, `web+1`, `worker-1`'
complete -c dyno -n "__fish_dyno_needs_command" -f -a "logs" -d 'Show the app\'s logs'
complete -c dyno -n "__fish_dyno_needs_command" -f -a "releases" -d 'List the app\'s releases'
complete -c dyno -n "__fish_dyno_needs_command" -f -a "run" -d 'Run a command in a one-off dyno: `dyno run bash`, `dyno run -- python manage.py migrate`'
complete -c dyno -n "__fish_dyno_needs_command" -f -a "dash" -d 'Dashboard: formation, dynos, releases, router metrics and live logs in one screen'
complete -c dyno -n "__fish_dyno_needs_command" -f -a "releases:info" -d 'Show a release: its change, when, and its config vars'
complete -c dyno -n "__fish_dyno_needs_command" -f -a "releases:rollback" -d 'Roll back to an earlier release\'s slug and config vars (a new release)'
complete -c dyno -n "__fish_dyno_needs_command" -f -a "releases:output" -d 'Show the output of a release\'s release command'
complete -c dyno -n "__fish_dyno_needs_command" -f -a "config" -d 'Show the app\'s config vars'
complete -c dyno -n "__fish_dyno_needs_command" -f -a "config:get" -d 'Show one config var\'s value'
complete -c dyno -n "__fish_dyno_needs_command" -f -a "config:set" -d 'Set config vars (a new release; the dynos restart with it)'
complete -c dyno -n "__fish_dyno_needs_command" -f -a "config:unset" -d 'Unset config vars (a new release; the dynos restart with it)'
complete -c dyno -n "__fish_dyno_needs_command" -f -a "ps:restart" -d 'Restart the app\'s dynos, those of one type, or one dyno'
complete -c dyno -n "__fish_dyno_needs_command" -f -a "ps:stop" -d 'Stop a dyno or the dynos of a type (the formation\'s are started again)'
complete -c dyno -n "__fish_dyno_needs_command" -f -a "ps:kill" -d 'Kill a dyno or the dynos of a type with SIGKILL, without the stop grace period'
complete -c dyno -n "__fish_dyno_needs_command" -f -a "run:detached" -d 'Run a command in a one-off dyno in the background; its output goes to the logs'
complete -c dyno -n "__fish_dyno_needs_command" -f -a "domains" -d 'List the app\'s domains'
complete -c dyno -n "__fish_dyno_needs_command" -f -a "domains:add" -d 'Add a custom domain to the app (the router answers for it)'
complete -c dyno -n "__fish_dyno_needs_command" -f -a "domains:remove" -d 'Remove a custom domain from the app'
complete -c dyno -n "__fish_dyno_needs_command" -f -a "drains" -d 'List the app\'s log drains'
complete -c dyno -n "__fish_dyno_needs_command" -f -a "drains:add" -d 'Forward the app\'s logs to syslog+tcp://HOST:PORT, syslog+tls://HOST:PORT or an http(s):// URL'
complete -c dyno -n "__fish_dyno_needs_command" -f -a "drains:remove" -d 'Stop forwarding the app\'s logs to a drain (by URL or token)'
complete -c dyno -n "__fish_dyno_needs_command" -f -a "ps:idle" -d 'Show or set idling: `on` stops web dynos after DYNO_IDLE_AFTER (30 min) without requests'
complete -c dyno -n "__fish_dyno_needs_command" -f -a "certs" -d 'Show the HTTPS listener and how to trust its local certificate authority'
complete -c dyno -n "__fish_dyno_needs_command" -f -a "builds" -d 'List the app\'s builds (status, buildpacks, commit, slug size, duration)'
complete -c dyno -n "__fish_dyno_needs_command" -f -a "builds:output" -d 'Show a build\'s output (default: the latest build)'
complete -c dyno -n "__fish_dyno_needs_command" -f -a "buildpacks" -d 'Show the app\'s buildpacks (none: detected on each build)'
complete -c dyno -n "__fish_dyno_needs_command" -f -a "buildpacks:set" -d 'Set the app\'s buildpack (a shipped name such as `python`, a directory or a git URL)'
complete -c dyno -n "__fish_dyno_needs_command" -f -a "buildpacks:add" -d 'Add a buildpack to the app\'s list (at the end, or at --index)'
complete -c dyno -n "__fish_dyno_needs_command" -f -a "buildpacks:remove" -d 'Remove a buildpack from the app\'s list (by URL or --index)'
complete -c dyno -n "__fish_dyno_needs_command" -f -a "buildpacks:clear" -d 'Clear the app\'s buildpacks: the next build detects them again'
complete -c dyno -n "__fish_dyno_needs_command" -f -a "stack" -d 'Show the stack: the runtimes (python3, node, ruby, go) dynos and builds get from the host'
complete -c dyno -n "__fish_dyno_needs_command" -f -a "git:remote" -d 'Add a git remote `dyno` for the app: `git push dyno main` then deploys'
complete -c dyno -n "__fish_dyno_needs_command" -f -a "git:hook" -d 'A git hook of the apps\' repositories (internal)'
complete -c dyno -n "__fish_dyno_needs_command" -f -a "daemon" -d 'Run the daemon in the foreground (the CLI starts it by itself when needed)'
complete -c dyno -n "__fish_dyno_needs_command" -f -a "daemon:stop" -d 'Stop the daemon and, unless --keep-dynos, every dyno'
complete -c dyno -n "__fish_dyno_needs_command" -f -a "daemon:status" -d 'Show whether the daemon runs, its version and the router\'s address'
complete -c dyno -n "__fish_dyno_needs_command" -f -a "completions" -d 'Print shell completions'
complete -c dyno -n "__fish_dyno_needs_command" -f -a "man" -d 'Write man pages into a directory'
complete -c dyno -n "__fish_dyno_needs_command" -f -a "shim" -d 'Per-dyno helper (internal): creates and holds one container'
complete -c dyno -n "__fish_dyno_needs_command" -f -a "init" -d 'PID 1 inside a dyno (internal)'
complete -c dyno -n "__fish_dyno_needs_command" -f -a "static" -d 'The static buildpack\'s web process: serves the app\'s files on $PORT (internal)'
complete -c dyno -n "__fish_dyno_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c dyno -n "__fish_dyno_using_subcommand up" -s a -l app -d 'App to run the command against (default: the app of the current directory)' -r
complete -c dyno -n "__fish_dyno_using_subcommand up" -s h -l help -d 'Print help'
complete -c dyno -n "__fish_dyno_using_subcommand up" -s V -l version -d 'Print version'
complete -c dyno -n "__fish_dyno_using_subcommand apps" -l json
complete -c dyno -n "__fish_dyno_using_subcommand apps" -s h -l help -d 'Print help'
complete -c dyno -n "__fish_dyno_using_subcommand apps" -s V -l version -d 'Print version'
complete -c dyno -n "__fish_dyno_using_subcommand apps:create" -l no-remote -d 'Also make it the app of the current directory'
complete -c dyno -n "__fish_dyno_using_subcommand apps:create" -l json
complete -c dyno -n "__fish_dyno_using_subcommand apps:create" -s h -l help -d 'Print help'
complete -c dyno -n "__fish_dyno_using_subcommand apps:create" -s V -l version -d 'Print version'
complete -c dyno -n "__fish_dyno_using_subcommand apps:info" -s a -l app -d 'App to run the command against (default: the app of the current directory)' -r
complete -c dyno -n "__fish_dyno_using_subcommand apps:info" -s j -l json
complete -c dyno -n "__fish_dyno_using_subcommand apps:info" -s h -l help -d 'Print help'
complete -c dyno -n "__fish_dyno_using_subcommand apps:info" -s V -l version -d 'Print version'
complete -c dyno -n "__fish_dyno_using_subcommand apps:destroy" -s a -l app -d 'App to run the command against (default: the app of the current directory)' -r
complete -c dyno -n "__fish_dyno_using_subcommand apps:destroy" -s c -l confirm -d 'The app\'s name again, to confirm' -r
complete -c dyno -n "__fish_dyno_using_subcommand apps:destroy" -s h -l help -d 'Print help'
complete -c dyno -n "__fish_dyno_using_subcommand apps:destroy" -s V -l version -d 'Print version'
complete -c dyno -n "__fish_dyno_using_subcommand apps:rename" -s a -l app -d 'App to run the command against (default: the app of the current directory)' -r
complete -c dyno -n "__fish_dyno_using_subcommand apps:rename" -s h -l help -d 'Print help'
complete -c dyno -n "__fish_dyno_using_subcommand apps:rename" -s V -l version -d 'Print version'
complete -c dyno -n "__fish_dyno_using_subcommand ps" -s a -l app -d 'App to run the command against (default: the app of the current directory)' -r
complete -c dyno -n "__fish_dyno_using_subcommand ps" -l json
complete -c dyno -n "__fish_dyno_using_subcommand ps" -s h -l help -d 'Print help'
complete -c dyno -n "__fish_dyno_using_subcommand ps" -s V -l version -d 'Print version'
complete -c dyno -n "__fish_dyno_using_subcommand ps:scale" -s a -l app -d 'App to run the command against (default: the app of the current directory)' -r
complete -c dyno -n "__fish_dyno_using_subcommand ps:scale" -s h -l help -d 'Print help'
complete -c dyno -n "__fish_dyno_using_subcommand ps:scale" -s V -l version -d 'Print version'
complete -c dyno -n "__fish_dyno_using_subcommand logs" -s a -l app -d 'App to run the command against (default: the app of the current directory)' -r
complete -c dyno -n "__fish_dyno_using_subcommand logs" -s n -l num -d 'Number of lines to show' -r
complete -c dyno -n "__fish_dyno_using_subcommand logs" -s d -l dyno -d 'Only lines of this dyno or process type (`web`, `web.1`)' -r
complete -c dyno -n "__fish_dyno_using_subcommand logs" -s s -l source -d 'Only lines of this source (`app`, `heroku`)' -r
complete -c dyno -n "__fish_dyno_using_subcommand logs" -s t -l tail -d 'Keep streaming new lines'
complete -c dyno -n "__fish_dyno_using_subcommand logs" -s h -l help -d 'Print help'
complete -c dyno -n "__fish_dyno_using_subcommand logs" -s V -l version -d 'Print version'
complete -c dyno -n "__fish_dyno_using_subcommand releases" -s a -l app -d 'App to run the command against (default: the app of the current directory)' -r
complete -c dyno -n "__fish_dyno_using_subcommand releases" -s n -l num -r
complete -c dyno -n "__fish_dyno_using_subcommand releases" -l json
complete -c dyno -n "__fish_dyno_using_subcommand releases" -s h -l help -d 'Print help'
complete -c dyno -n "__fish_dyno_using_subcommand releases" -s V -l version -d 'Print version'
complete -c dyno -n "__fish_dyno_using_subcommand run" -s a -l app -d 'App to run the command against (default: the app of the current directory)' -r
complete -c dyno -n "__fish_dyno_using_subcommand run" -s e -l env -d 'Environment variables for this dyno: KEY=value, several as "K1=v1;K2=v2"; repeatable' -r
complete -c dyno -n "__fish_dyno_using_subcommand run" -l no-tty -d 'Plain stdin/stdout/stderr instead of a terminal (the default without one)'
complete -c dyno -n "__fish_dyno_using_subcommand run" -s x -l exit-code -d 'Exit with the dyno\'s exit code (always done; accepted as Heroku\'s CLI has it)'
complete -c dyno -n "__fish_dyno_using_subcommand run" -s h -l help -d 'Print help'
complete -c dyno -n "__fish_dyno_using_subcommand run" -s V -l version -d 'Print version'
complete -c dyno -n "__fish_dyno_using_subcommand dash" -s a -l app -d 'App to run the command against (default: the app of the current directory)' -r
complete -c dyno -n "__fish_dyno_using_subcommand dash" -s h -l help -d 'Print help'
complete -c dyno -n "__fish_dyno_using_subcommand dash" -s V -l version -d 'Print version'
complete -c dyno -n "__fish_dyno_using_subcommand releases:info" -s a -l app -d 'App to run the command against (default: the app of the current directory)' -r
complete -c dyno -n "__fish_dyno_using_subcommand releases:info" -l json
complete -c dyno -n "__fish_dyno_using_subcommand releases:info" -s s -l shell -d 'Config vars as KEY=\'value\' lines'
complete -c dyno -n "__fish_dyno_using_subcommand releases:info" -s h -l help -d 'Print help'
complete -c dyno -n "__fish_dyno_using_subcommand releases:info" -s V -l version -d 'Print version'
complete -c dyno -n "__fish_dyno_using_subcommand releases:rollback" -s a -l app -d 'App to run the command against (default: the app of the current directory)' -r
complete -c dyno -n "__fish_dyno_using_subcommand releases:rollback" -s h -l help -d 'Print help'
complete -c dyno -n "__fish_dyno_using_subcommand releases:rollback" -s V -l version -d 'Print version'
complete -c dyno -n "__fish_dyno_using_subcommand releases:output" -s a -l app -d 'App to run the command against (default: the app of the current directory)' -r
complete -c dyno -n "__fish_dyno_using_subcommand releases:output" -s h -l help -d 'Print help'
complete -c dyno -n "__fish_dyno_using_subcommand releases:output" -s V -l version -d 'Print version'
complete -c dyno -n "__fish_dyno_using_subcommand config" -s a -l app -d 'App to run the command against (default: the app of the current directory)' -r
complete -c dyno -n "__fish_dyno_using_subcommand config" -s j -l json
complete -c dyno -n "__fish_dyno_using_subcommand config" -s s -l shell -d 'As KEY=\'value\' lines, for a shell'
complete -c dyno -n "__fish_dyno_using_subcommand config" -s h -l help -d 'Print help'
complete -c dyno -n "__fish_dyno_using_subcommand config" -s V -l version -d 'Print version'
complete -c dyno -n "__fish_dyno_using_subcommand config:get" -s a -l app -d 'App to run the command against (default: the app of the current directory)' -r
complete -c dyno -n "__fish_dyno_using_subcommand config:get" -s s -l shell -d 'As KEY=\'value\', for a shell'
complete -c dyno -n "__fish_dyno_using_subcommand config:get" -s h -l help -d 'Print help'
complete -c dyno -n "__fish_dyno_using_subcommand config:get" -s V -l version -d 'Print version'
complete -c dyno -n "__fish_dyno_using_subcommand config:set" -s a -l app -d 'App to run the command against (default: the app of the current directory)' -r
complete -c dyno -n "__fish_dyno_using_subcommand config:set" -s h -l help -d 'Print help'
complete -c dyno -n "__fish_dyno_using_subcommand config:set" -s V -l version -d 'Print version'
complete -c dyno -n "__fish_dyno_using_subcommand config:unset" -s a -l app -d 'App to run the command against (default: the app of the current directory)' -r
complete -c dyno -n "__fish_dyno_using_subcommand config:unset" -s h -l help -d 'Print help'
complete -c dyno -n "__fish_dyno_using_subcommand config:unset" -s V -l version -d 'Print version'
complete -c dyno -n "__fish_dyno_using_subcommand ps:restart" -s a -l app -d 'App to run the command against (default: the app of the current directory)' -r
complete -c dyno -n "__fish_dyno_using_subcommand ps:restart" -s h -l help -d 'Print help'
complete -c dyno -n "__fish_dyno_using_subcommand ps:restart" -s V -l version -d 'Print version'
complete -c dyno -n "__fish_dyno_using_subcommand ps:stop" -s a -l app -d 'App to run the command against (default: the app of the current directory)' -r
complete -c dyno -n "__fish_dyno_using_subcommand ps:stop" -s h -l help -d 'Print help'
complete -c dyno -n "__fish_dyno_using_subcommand ps:stop" -s V -l version -d 'Print version'
complete -c dyno -n "__fish_dyno_using_subcommand ps:kill" -s a -l app -d 'App to run the command against (default: the app of the current directory)' -r
complete -c dyno -n "__fish_dyno_using_subcommand ps:kill" -s h -l help -d 'Print help'
complete -c dyno -n "__fish_dyno_using_subcommand ps:kill" -s V -l version -d 'Print version'
complete -c dyno -n "__fish_dyno_using_subcommand run:detached" -s a -l app -d 'App to run the command against (default: the app of the current directory)' -r
complete -c dyno -n "__fish_dyno_using_subcommand run:detached" -s e -l env -d 'Environment for the dyno: \'KEY=value;KEY2=value2\'' -r
complete -c dyno -n "__fish_dyno_using_subcommand run:detached" -s h -l help -d 'Print help'
complete -c dyno -n "__fish_dyno_using_subcommand run:detached" -s V -l version -d 'Print version'
complete -c dyno -n "__fish_dyno_using_subcommand domains" -s a -l app -d 'App to run the command against (default: the app of the current directory)' -r
complete -c dyno -n "__fish_dyno_using_subcommand domains" -l json
complete -c dyno -n "__fish_dyno_using_subcommand domains" -s h -l help -d 'Print help'
complete -c dyno -n "__fish_dyno_using_subcommand domains" -s V -l version -d 'Print version'
complete -c dyno -n "__fish_dyno_using_subcommand domains:add" -s a -l app -d 'App to run the command against (default: the app of the current directory)' -r
complete -c dyno -n "__fish_dyno_using_subcommand domains:add" -l json
complete -c dyno -n "__fish_dyno_using_subcommand domains:add" -s h -l help -d 'Print help'
complete -c dyno -n "__fish_dyno_using_subcommand domains:add" -s V -l version -d 'Print version'
complete -c dyno -n "__fish_dyno_using_subcommand domains:remove" -s a -l app -d 'App to run the command against (default: the app of the current directory)' -r
complete -c dyno -n "__fish_dyno_using_subcommand domains:remove" -s h -l help -d 'Print help'
complete -c dyno -n "__fish_dyno_using_subcommand domains:remove" -s V -l version -d 'Print version'
complete -c dyno -n "__fish_dyno_using_subcommand drains" -s a -l app -d 'App to run the command against (default: the app of the current directory)' -r
complete -c dyno -n "__fish_dyno_using_subcommand drains" -l json
complete -c dyno -n "__fish_dyno_using_subcommand drains" -s h -l help -d 'Print help'
complete -c dyno -n "__fish_dyno_using_subcommand drains" -s V -l version -d 'Print version'
complete -c dyno -n "__fish_dyno_using_subcommand drains:add" -s a -l app -d 'App to run the command against (default: the app of the current directory)' -r
complete -c dyno -n "__fish_dyno_using_subcommand drains:add" -s h -l help -d 'Print help'
complete -c dyno -n "__fish_dyno_using_subcommand drains:add" -s V -l version -d 'Print version'
complete -c dyno -n "__fish_dyno_using_subcommand drains:remove" -s a -l app -d 'App to run the command against (default: the app of the current directory)' -r
complete -c dyno -n "__fish_dyno_using_subcommand drains:remove" -s h -l help -d 'Print help'
complete -c dyno -n "__fish_dyno_using_subcommand drains:remove" -s V -l version -d 'Print version'
complete -c dyno -n "__fish_dyno_using_subcommand ps:idle" -s a -l app -d 'App to run the command against (default: the app of the current directory)' -r
complete -c dyno -n "__fish_dyno_using_subcommand ps:idle" -l json
complete -c dyno -n "__fish_dyno_using_subcommand ps:idle" -s h -l help -d 'Print help'
complete -c dyno -n "__fish_dyno_using_subcommand ps:idle" -s V -l version -d 'Print version'
complete -c dyno -n "__fish_dyno_using_subcommand certs" -l json
complete -c dyno -n "__fish_dyno_using_subcommand certs" -s h -l help -d 'Print help'
complete -c dyno -n "__fish_dyno_using_subcommand certs" -s V -l version -d 'Print version'
complete -c dyno -n "__fish_dyno_using_subcommand builds" -s a -l app -d 'App to run the command against (default: the app of the current directory)' -r
complete -c dyno -n "__fish_dyno_using_subcommand builds" -s n -l num -r
complete -c dyno -n "__fish_dyno_using_subcommand builds" -l json
complete -c dyno -n "__fish_dyno_using_subcommand builds" -s h -l help -d 'Print help'
complete -c dyno -n "__fish_dyno_using_subcommand builds" -s V -l version -d 'Print version'
complete -c dyno -n "__fish_dyno_using_subcommand builds:output" -s a -l app -d 'App to run the command against (default: the app of the current directory)' -r
complete -c dyno -n "__fish_dyno_using_subcommand builds:output" -s h -l help -d 'Print help'
complete -c dyno -n "__fish_dyno_using_subcommand builds:output" -s V -l version -d 'Print version'
complete -c dyno -n "__fish_dyno_using_subcommand buildpacks" -s a -l app -d 'App to run the command against (default: the app of the current directory)' -r
complete -c dyno -n "__fish_dyno_using_subcommand buildpacks" -l json
complete -c dyno -n "__fish_dyno_using_subcommand buildpacks" -s h -l help -d 'Print help'
complete -c dyno -n "__fish_dyno_using_subcommand buildpacks" -s V -l version -d 'Print version'
complete -c dyno -n "__fish_dyno_using_subcommand buildpacks:set" -s i -l index -d 'Replace the buildpack at this position (1-based)' -r
complete -c dyno -n "__fish_dyno_using_subcommand buildpacks:set" -s a -l app -d 'App to run the command against (default: the app of the current directory)' -r
complete -c dyno -n "__fish_dyno_using_subcommand buildpacks:set" -s h -l help -d 'Print help'
complete -c dyno -n "__fish_dyno_using_subcommand buildpacks:set" -s V -l version -d 'Print version'
complete -c dyno -n "__fish_dyno_using_subcommand buildpacks:add" -s i -l index -d 'Insert at this position (1-based)' -r
complete -c dyno -n "__fish_dyno_using_subcommand buildpacks:add" -s a -l app -d 'App to run the command against (default: the app of the current directory)' -r
complete -c dyno -n "__fish_dyno_using_subcommand buildpacks:add" -s h -l help -d 'Print help'
complete -c dyno -n "__fish_dyno_using_subcommand buildpacks:add" -s V -l version -d 'Print version'
complete -c dyno -n "__fish_dyno_using_subcommand buildpacks:remove" -s i -l index -r
complete -c dyno -n "__fish_dyno_using_subcommand buildpacks:remove" -s a -l app -d 'App to run the command against (default: the app of the current directory)' -r
complete -c dyno -n "__fish_dyno_using_subcommand buildpacks:remove" -s h -l help -d 'Print help'
complete -c dyno -n "__fish_dyno_using_subcommand buildpacks:remove" -s V -l version -d 'Print version'
complete -c dyno -n "__fish_dyno_using_subcommand buildpacks:clear" -s a -l app -d 'App to run the command against (default: the app of the current directory)' -r
complete -c dyno -n "__fish_dyno_using_subcommand buildpacks:clear" -s h -l help -d 'Print help'
complete -c dyno -n "__fish_dyno_using_subcommand buildpacks:clear" -s V -l version -d 'Print version'
complete -c dyno -n "__fish_dyno_using_subcommand stack" -l json
complete -c dyno -n "__fish_dyno_using_subcommand stack" -s h -l help -d 'Print help'
complete -c dyno -n "__fish_dyno_using_subcommand stack" -s V -l version -d 'Print version'
complete -c dyno -n "__fish_dyno_using_subcommand git:remote" -s a -l app -d 'App to run the command against (default: the app of the current directory)' -r
complete -c dyno -n "__fish_dyno_using_subcommand git:remote" -s r -l remote -d 'The remote\'s name' -r
complete -c dyno -n "__fish_dyno_using_subcommand git:remote" -s h -l help -d 'Print help'
complete -c dyno -n "__fish_dyno_using_subcommand git:remote" -s V -l version -d 'Print version'
complete -c dyno -n "__fish_dyno_using_subcommand git:hook" -s h -l help -d 'Print help'
complete -c dyno -n "__fish_dyno_using_subcommand git:hook" -s V -l version -d 'Print version'
complete -c dyno -n "__fish_dyno_using_subcommand daemon" -s h -l help -d 'Print help'
complete -c dyno -n "__fish_dyno_using_subcommand daemon" -s V -l version -d 'Print version'
complete -c dyno -n "__fish_dyno_using_subcommand daemon:stop" -l keep-dynos -d 'Leave the dynos running, to be re-adopted by the next daemon'
complete -c dyno -n "__fish_dyno_using_subcommand daemon:stop" -s h -l help -d 'Print help'
complete -c dyno -n "__fish_dyno_using_subcommand daemon:stop" -s V -l version -d 'Print version'
complete -c dyno -n "__fish_dyno_using_subcommand daemon:status" -l json
complete -c dyno -n "__fish_dyno_using_subcommand daemon:status" -s h -l help -d 'Print help'
complete -c dyno -n "__fish_dyno_using_subcommand daemon:status" -s V -l version -d 'Print version'
complete -c dyno -n "__fish_dyno_using_subcommand completions" -s h -l help -d 'Print help'
complete -c dyno -n "__fish_dyno_using_subcommand completions" -s V -l version -d 'Print version'
complete -c dyno -n "__fish_dyno_using_subcommand man" -s h -l help -d 'Print help'
complete -c dyno -n "__fish_dyno_using_subcommand man" -s V -l version -d 'Print version'
complete -c dyno -n "__fish_dyno_using_subcommand shim" -s h -l help -d 'Print help'
complete -c dyno -n "__fish_dyno_using_subcommand shim" -s V -l version -d 'Print version'
complete -c dyno -n "__fish_dyno_using_subcommand init" -l no-profile -d 'Run the command without sourcing `.profile.d` (build steps)'
complete -c dyno -n "__fish_dyno_using_subcommand init" -s h -l help -d 'Print help'
complete -c dyno -n "__fish_dyno_using_subcommand init" -s V -l version -d 'Print version'
complete -c dyno -n "__fish_dyno_using_subcommand static" -s h -l help -d 'Print help'
complete -c dyno -n "__fish_dyno_using_subcommand static" -s V -l version -d 'Print version'
complete -c dyno -n "__fish_dyno_using_subcommand help; and not __fish_seen_subcommand_from up apps apps:create apps:info apps:destroy apps:rename ps ps:scale logs releases run dash releases:info releases:rollback releases:output config config:get config:set config:unset ps:restart ps:stop ps:kill run:detached domains domains:add domains:remove drains drains:add drains:remove ps:idle certs builds builds:output buildpacks buildpacks:set buildpacks:add buildpacks:remove buildpacks:clear stack git:remote git:hook daemon daemon:stop daemon:status completions man shim init static help" -f -a "up" -d 'Build the current directory and run it: create the app if needed, build, release, scale'
complete -c dyno -n "__fish_dyno_using_subcommand help; and not __fish_seen_subcommand_from up apps apps:create apps:info apps:destroy apps:rename ps ps:scale logs releases run dash releases:info releases:rollback releases:output config config:get config:set config:unset ps:restart ps:stop ps:kill run:detached domains domains:add domains:remove drains drains:add drains:remove ps:idle certs builds builds:output buildpacks buildpacks:set buildpacks:add buildpacks:remove buildpacks:clear stack git:remote git:hook daemon daemon:stop daemon:status completions man shim init static help" -f -a "apps" -d 'List your apps'
complete -c dyno -n "__fish_dyno_using_subcommand help; and not __fish_seen_subcommand_from up apps apps:create apps:info apps:destroy apps:rename ps ps:scale logs releases run dash releases:info releases:rollback releases:output config config:get config:set config:unset ps:restart ps:stop ps:kill run:detached domains domains:add domains:remove drains drains:add drains:remove ps:idle certs builds builds:output buildpacks buildpacks:set buildpacks:add buildpacks:remove buildpacks:clear stack git:remote git:hook daemon daemon:stop daemon:status completions man shim init static help" -f -a "apps:create" -d 'Create an app (a random name when none is given)'
complete -c dyno -n "__fish_dyno_using_subcommand help; and not __fish_seen_subcommand_from up apps apps:create apps:info apps:destroy apps:rename ps ps:scale logs releases run dash releases:info releases:rollback releases:output config config:get config:set config:unset ps:restart ps:stop ps:kill run:detached domains domains:add domains:remove drains drains:add drains:remove ps:idle certs builds builds:output buildpacks buildpacks:set buildpacks:add buildpacks:remove buildpacks:clear stack git:remote git:hook daemon daemon:stop daemon:status completions man shim init static help" -f -a "apps:info" -d 'Show an app\'s details'
complete -c dyno -n "__fish_dyno_using_subcommand help; and not __fish_seen_subcommand_from up apps apps:create apps:info apps:destroy apps:rename ps ps:scale logs releases run dash releases:info releases:rollback releases:output config config:get config:set config:unset ps:restart ps:stop ps:kill run:detached domains domains:add domains:remove drains drains:add drains:remove ps:idle certs builds builds:output buildpacks buildpacks:set buildpacks:add buildpacks:remove buildpacks:clear stack git:remote git:hook daemon daemon:stop daemon:status completions man shim init static help" -f -a "apps:destroy" -d 'Destroy an app and everything of it'
complete -c dyno -n "__fish_dyno_using_subcommand help; and not __fish_seen_subcommand_from up apps apps:create apps:info apps:destroy apps:rename ps ps:scale logs releases run dash releases:info releases:rollback releases:output config config:get config:set config:unset ps:restart ps:stop ps:kill run:detached domains domains:add domains:remove drains drains:add drains:remove ps:idle certs builds builds:output buildpacks buildpacks:set buildpacks:add buildpacks:remove buildpacks:clear stack git:remote git:hook daemon daemon:stop daemon:status completions man shim init static help" -f -a "apps:rename" -d 'Rename an app'
complete -c dyno -n "__fish_dyno_using_subcommand help; and not __fish_seen_subcommand_from up apps apps:create apps:info apps:destroy apps:rename ps ps:scale logs releases run dash releases:info releases:rollback releases:output config config:get config:set config:unset ps:restart ps:stop ps:kill run:detached domains domains:add domains:remove drains drains:add drains:remove ps:idle certs builds builds:output buildpacks buildpacks:set buildpacks:add buildpacks:remove buildpacks:clear stack git:remote git:hook daemon daemon:stop daemon:status completions man shim init static help" -f -a "ps" -d 'List the app\'s dynos'
complete -c dyno -n "__fish_dyno_using_subcommand help; and not __fish_seen_subcommand_from up apps apps:create apps:info apps:destroy apps:rename ps ps:scale logs releases run dash releases:info releases:rollback releases:output config config:get config:set config:unset ps:restart ps:stop ps:kill run:detached domains domains:add domains:remove drains drains:add drains:remove ps:idle certs builds builds:output buildpacks buildpacks:set buildpacks:add buildpacks:remove buildpacks:clear stack git:remote git:hook daemon daemon:stop daemon:status completions man shim init static help" -f -a "ps:scale" -d 'Scale process types: `web=3 worker=1`, `web+1`, `worker-1`'
complete -c dyno -n "__fish_dyno_using_subcommand help; and not __fish_seen_subcommand_from up apps apps:create apps:info apps:destroy apps:rename ps ps:scale logs releases run dash releases:info releases:rollback releases:output config config:get config:set config:unset ps:restart ps:stop ps:kill run:detached domains domains:add domains:remove drains drains:add drains:remove ps:idle certs builds builds:output buildpacks buildpacks:set buildpacks:add buildpacks:remove buildpacks:clear stack git:remote git:hook daemon daemon:stop daemon:status completions man shim init static help" -f -a "logs" -d 'Show the app\'s logs'
complete -c dyno -n "__fish_dyno_using_subcommand help; and not __fish_seen_subcommand_from up apps apps:create apps:info apps:destroy apps:rename ps ps:scale logs releases run dash releases:info releases:rollback releases:output config config:get config:set config:unset ps:restart ps:stop ps:kill run:detached domains domains:add domains:remove drains drains:add drains:remove ps:idle certs builds builds:output buildpacks buildpacks:set buildpacks:add buildpacks:remove buildpacks:clear stack git:remote git:hook daemon daemon:stop daemon:status completions man shim init static help" -f -a "releases" -d 'List the app\'s releases'
complete -c dyno -n "__fish_dyno_using_subcommand help; and not __fish_seen_subcommand_from up apps apps:create apps:info apps:destroy apps:rename ps ps:scale logs releases run dash releases:info releases:rollback releases:output config config:get config:set config:unset ps:restart ps:stop ps:kill run:detached domains domains:add domains:remove drains drains:add drains:remove ps:idle certs builds builds:output buildpacks buildpacks:set buildpacks:add buildpacks:remove buildpacks:clear stack git:remote git:hook daemon daemon:stop daemon:status completions man shim init static help" -f -a "run" -d 'Run a command in a one-off dyno: `dyno run bash`, `dyno run -- python manage.py migrate`'
complete -c dyno -n "__fish_dyno_using_subcommand help; and not __fish_seen_subcommand_from up apps apps:create apps:info apps:destroy apps:rename ps ps:scale logs releases run dash releases:info releases:rollback releases:output config config:get config:set config:unset ps:restart ps:stop ps:kill run:detached domains domains:add domains:remove drains drains:add drains:remove ps:idle certs builds builds:output buildpacks buildpacks:set buildpacks:add buildpacks:remove buildpacks:clear stack git:remote git:hook daemon daemon:stop daemon:status completions man shim init static help" -f -a "dash" -d 'Dashboard: formation, dynos, releases, router metrics and live logs in one screen'
complete -c dyno -n "__fish_dyno_using_subcommand help; and not __fish_seen_subcommand_from up apps apps:create apps:info apps:destroy apps:rename ps ps:scale logs releases run dash releases:info releases:rollback releases:output config config:get config:set config:unset ps:restart ps:stop ps:kill run:detached domains domains:add domains:remove drains drains:add drains:remove ps:idle certs builds builds:output buildpacks buildpacks:set buildpacks:add buildpacks:remove buildpacks:clear stack git:remote git:hook daemon daemon:stop daemon:status completions man shim init static help" -f -a "releases:info" -d 'Show a release: its change, when, and its config vars'
complete -c dyno -n "__fish_dyno_using_subcommand help; and not __fish_seen_subcommand_from up apps apps:create apps:info apps:destroy apps:rename ps ps:scale logs releases run dash releases:info releases:rollback releases:output config config:get config:set config:unset ps:restart ps:stop ps:kill run:detached domains domains:add domains:remove drains drains:add drains:remove ps:idle certs builds builds:output buildpacks buildpacks:set buildpacks:add buildpacks:remove buildpacks:clear stack git:remote git:hook daemon daemon:stop daemon:status completions man shim init static help" -f -a "releases:rollback" -d 'Roll back to an earlier release\'s slug and config vars (a new release)'
complete -c dyno -n "__fish_dyno_using_subcommand help; and not __fish_seen_subcommand_from up apps apps:create apps:info apps:destroy apps:rename ps ps:scale logs releases run dash releases:info releases:rollback releases:output config config:get config:set config:unset ps:restart ps:stop ps:kill run:detached domains domains:add domains:remove drains drains:add drains:remove ps:idle certs builds builds:output buildpacks buildpacks:set buildpacks:add buildpacks:remove buildpacks:clear stack git:remote git:hook daemon daemon:stop daemon:status completions man shim init static help" -f -a "releases:output" -d 'Show the output of a release\'s release command'
complete -c dyno -n "__fish_dyno_using_subcommand help; and not __fish_seen_subcommand_from up apps apps:create apps:info apps:destroy apps:rename ps ps:scale logs releases run dash releases:info releases:rollback releases:output config config:get config:set config:unset ps:restart ps:stop ps:kill run:detached domains domains:add domains:remove drains drains:add drains:remove ps:idle certs builds builds:output buildpacks buildpacks:set buildpacks:add buildpacks:remove buildpacks:clear stack git:remote git:hook daemon daemon:stop daemon:status completions man shim init static help" -f -a "config" -d 'Show the app\'s config vars'
complete -c dyno -n "__fish_dyno_using_subcommand help; and not __fish_seen_subcommand_from up apps apps:create apps:info apps:destroy apps:rename ps ps:scale logs releases run dash releases:info releases:rollback releases:output config config:get config:set config:unset ps:restart ps:stop ps:kill run:detached domains domains:add domains:remove drains drains:add drains:remove ps:idle certs builds builds:output buildpacks buildpacks:set buildpacks:add buildpacks:remove buildpacks:clear stack git:remote git:hook daemon daemon:stop daemon:status completions man shim init static help" -f -a "config:get" -d 'Show one config var\'s value'
complete -c dyno -n "__fish_dyno_using_subcommand help; and not __fish_seen_subcommand_from up apps apps:create apps:info apps:destroy apps:rename ps ps:scale logs releases run dash releases:info releases:rollback releases:output config config:get config:set config:unset ps:restart ps:stop ps:kill run:detached domains domains:add domains:remove drains drains:add drains:remove ps:idle certs builds builds:output buildpacks buildpacks:set buildpacks:add buildpacks:remove buildpacks:clear stack git:remote git:hook daemon daemon:stop daemon:status completions man shim init static help" -f -a "config:set" -d 'Set config vars (a new release; the dynos restart with it)'
complete -c dyno -n "__fish_dyno_using_subcommand help; and not __fish_seen_subcommand_from up apps apps:create apps:info apps:destroy apps:rename ps ps:scale logs releases run dash releases:info releases:rollback releases:output config config:get config:set config:unset ps:restart ps:stop ps:kill run:detached domains domains:add domains:remove drains drains:add drains:remove ps:idle certs builds builds:output buildpacks buildpacks:set buildpacks:add buildpacks:remove buildpacks:clear stack git:remote git:hook daemon daemon:stop daemon:status completions man shim init static help" -f -a "config:unset" -d 'Unset config vars (a new release; the dynos restart with it)'
complete -c dyno -n "__fish_dyno_using_subcommand help; and not __fish_seen_subcommand_from up apps apps:create apps:info apps:destroy apps:rename ps ps:scale logs releases run dash releases:info releases:rollback releases:output config config:get config:set config:unset ps:restart ps:stop ps:kill run:detached domains domains:add domains:remove drains drains:add drains:remove ps:idle certs builds builds:output buildpacks buildpacks:set buildpacks:add buildpacks:remove buildpacks:clear stack git:remote git:hook daemon daemon:stop daemon:status completions man shim init static help" -f -a "ps:restart" -d 'Restart the app\'s dynos, those of one type, or one dyno'
complete -c dyno -n "__fish_dyno_using_subcommand help; and not __fish_seen_subcommand_from up apps apps:create apps:info apps:destroy apps:rename ps ps:scale logs releases run dash releases:info releases:rollback releases:output config config:get config:set config:unset ps:restart ps:stop ps:kill run:detached domains domains:add domains:remove drains drains:add drains:remove ps:idle certs builds builds:output buildpacks buildpacks:set buildpacks:add buildpacks:remove buildpacks:clear stack git:remote git:hook daemon daemon:stop daemon:status completions man shim init static help" -f -a "ps:stop" -d 'Stop a dyno or the dynos of a type (the formation\'s are started again)'
complete -c dyno -n "__fish_dyno_using_subcommand help; and not __fish_seen_subcommand_from up apps apps:create apps:info apps:destroy apps:rename ps ps:scale logs releases run dash releases:info releases:rollback releases:output config config:get config:set config:unset ps:restart ps:stop ps:kill run:detached domains domains:add domains:remove drains drains:add drains:remove ps:idle certs builds builds:output buildpacks buildpacks:set buildpacks:add buildpacks:remove buildpacks:clear stack git:remote git:hook daemon daemon:stop daemon:status completions man shim init static help" -f -a "ps:kill" -d 'Kill a dyno or the dynos of a type with SIGKILL, without the stop grace period'
complete -c dyno -n "__fish_dyno_using_subcommand help; and not __fish_seen_subcommand_from up apps apps:create apps:info apps:destroy apps:rename ps ps:scale logs releases run dash releases:info releases:rollback releases:output config config:get config:set config:unset ps:restart ps:stop ps:kill run:detached domains domains:add domains:remove drains drains:add drains:remove ps:idle certs builds builds:output buildpacks buildpacks:set buildpacks:add buildpacks:remove buildpacks:clear stack git:remote git:hook daemon daemon:stop daemon:status completions man shim init static help" -f -a "run:detached" -d 'Run a command in a one-off dyno in the background; its output goes to the logs'
complete -c dyno -n "__fish_dyno_using_subcommand help; and not __fish_seen_subcommand_from up apps apps:create apps:info apps:destroy apps:rename ps ps:scale logs releases run dash releases:info releases:rollback releases:output config config:get config:set config:unset ps:restart ps:stop ps:kill run:detached domains domains:add domains:remove drains drains:add drains:remove ps:idle certs builds builds:output buildpacks buildpacks:set buildpacks:add buildpacks:remove buildpacks:clear stack git:remote git:hook daemon daemon:stop daemon:status completions man shim init static help" -f -a "domains" -d 'List the app\'s domains'
complete -c dyno -n "__fish_dyno_using_subcommand help; and not __fish_seen_subcommand_from up apps apps:create apps:info apps:destroy apps:rename ps ps:scale logs releases run dash releases:info releases:rollback releases:output config config:get config:set config:unset ps:restart ps:stop ps:kill run:detached domains domains:add domains:remove drains drains:add drains:remove ps:idle certs builds builds:output buildpacks buildpacks:set buildpacks:add buildpacks:remove buildpacks:clear stack git:remote git:hook daemon daemon:stop daemon:status completions man shim init static help" -f -a "domains:add" -d 'Add a custom domain to the app (the router answers for it)'
complete -c dyno -n "__fish_dyno_using_subcommand help; and not __fish_seen_subcommand_from up apps apps:create apps:info apps:destroy apps:rename ps ps:scale logs releases run dash releases:info releases:rollback releases:output config config:get config:set config:unset ps:restart ps:stop ps:kill run:detached domains domains:add domains:remove drains drains:add drains:remove ps:idle certs builds builds:output buildpacks buildpacks:set buildpacks:add buildpacks:remove buildpacks:clear stack git:remote git:hook daemon daemon:stop daemon:status completions man shim init static help" -f -a "domains:remove" -d 'Remove a custom domain from the app'
complete -c dyno -n "__fish_dyno_using_subcommand help; and not __fish_seen_subcommand_from up apps apps:create apps:info apps:destroy apps:rename ps ps:scale logs releases run dash releases:info releases:rollback releases:output config config:get config:set config:unset ps:restart ps:stop ps:kill run:detached domains domains:add domains:remove drains drains:add drains:remove ps:idle certs builds builds:output buildpacks buildpacks:set buildpacks:add buildpacks:remove buildpacks:clear stack git:remote git:hook daemon daemon:stop daemon:status completions man shim init static help" -f -a "drains" -d 'List the app\'s log drains'
complete -c dyno -n "__fish_dyno_using_subcommand help; and not __fish_seen_subcommand_from up apps apps:create apps:info apps:destroy apps:rename ps ps:scale logs releases run dash releases:info releases:rollback releases:output config config:get config:set config:unset ps:restart ps:stop ps:kill run:detached domains domains:add domains:remove drains drains:add drains:remove ps:idle certs builds builds:output buildpacks buildpacks:set buildpacks:add buildpacks:remove buildpacks:clear stack git:remote git:hook daemon daemon:stop daemon:status completions man shim init static help" -f -a "drains:add" -d 'Forward the app\'s logs to syslog+tcp://HOST:PORT, syslog+tls://HOST:PORT or an http(s):// URL'
complete -c dyno -n "__fish_dyno_using_subcommand help; and not __fish_seen_subcommand_from up apps apps:create apps:info apps:destroy apps:rename ps ps:scale logs releases run dash releases:info releases:rollback releases:output config config:get config:set config:unset ps:restart ps:stop ps:kill run:detached domains domains:add domains:remove drains drains:add drains:remove ps:idle certs builds builds:output buildpacks buildpacks:set buildpacks:add buildpacks:remove buildpacks:clear stack git:remote git:hook daemon daemon:stop daemon:status completions man shim init static help" -f -a "drains:remove" -d 'Stop forwarding the app\'s logs to a drain (by URL or token)'
complete -c dyno -n "__fish_dyno_using_subcommand help; and not __fish_seen_subcommand_from up apps apps:create apps:info apps:destroy apps:rename ps ps:scale logs releases run dash releases:info releases:rollback releases:output config config:get config:set config:unset ps:restart ps:stop ps:kill run:detached domains domains:add domains:remove drains drains:add drains:remove ps:idle certs builds builds:output buildpacks buildpacks:set buildpacks:add buildpacks:remove buildpacks:clear stack git:remote git:hook daemon daemon:stop daemon:status completions man shim init static help" -f -a "ps:idle" -d 'Show or set idling: `on` stops web dynos after DYNO_IDLE_AFTER (30 min) without requests'
complete -c dyno -n "__fish_dyno_using_subcommand help; and not __fish_seen_subcommand_from up apps apps:create apps:info apps:destroy apps:rename ps ps:scale logs releases run dash releases:info releases:rollback releases:output config config:get config:set config:unset ps:restart ps:stop ps:kill run:detached domains domains:add domains:remove drains drains:add drains:remove ps:idle certs builds builds:output buildpacks buildpacks:set buildpacks:add buildpacks:remove buildpacks:clear stack git:remote git:hook daemon daemon:stop daemon:status completions man shim init static help" -f -a "certs" -d 'Show the HTTPS listener and how to trust its local certificate authority'
complete -c dyno -n "__fish_dyno_using_subcommand help; and not __fish_seen_subcommand_from up apps apps:create apps:info apps:destroy apps:rename ps ps:scale logs releases run dash releases:info releases:rollback releases:output config config:get config:set config:unset ps:restart ps:stop ps:kill run:detached domains domains:add domains:remove drains drains:add drains:remove ps:idle certs builds builds:output buildpacks buildpacks:set buildpacks:add buildpacks:remove buildpacks:clear stack git:remote git:hook daemon daemon:stop daemon:status completions man shim init static help" -f -a "builds" -d 'List the app\'s builds (status, buildpacks, commit, slug size, duration)'
complete -c dyno -n "__fish_dyno_using_subcommand help; and not __fish_seen_subcommand_from up apps apps:create apps:info apps:destroy apps:rename ps ps:scale logs releases run dash releases:info releases:rollback releases:output config config:get config:set config:unset ps:restart ps:stop ps:kill run:detached domains domains:add domains:remove drains drains:add drains:remove ps:idle certs builds builds:output buildpacks buildpacks:set buildpacks:add buildpacks:remove buildpacks:clear stack git:remote git:hook daemon daemon:stop daemon:status completions man shim init static help" -f -a "builds:output" -d 'Show a build\'s output (default: the latest build)'
complete -c dyno -n "__fish_dyno_using_subcommand help; and not __fish_seen_subcommand_from up apps apps:create apps:info apps:destroy apps:rename ps ps:scale logs releases run dash releases:info releases:rollback releases:output config config:get config:set config:unset ps:restart ps:stop ps:kill run:detached domains domains:add domains:remove drains drains:add drains:remove ps:idle certs builds builds:output buildpacks buildpacks:set buildpacks:add buildpacks:remove buildpacks:clear stack git:remote git:hook daemon daemon:stop daemon:status completions man shim init static help" -f -a "buildpacks" -d 'Show the app\'s buildpacks (none: detected on each build)'
complete -c dyno -n "__fish_dyno_using_subcommand help; and not __fish_seen_subcommand_from up apps apps:create apps:info apps:destroy apps:rename ps ps:scale logs releases run dash releases:info releases:rollback releases:output config config:get config:set config:unset ps:restart ps:stop ps:kill run:detached domains domains:add domains:remove drains drains:add drains:remove ps:idle certs builds builds:output buildpacks buildpacks:set buildpacks:add buildpacks:remove buildpacks:clear stack git:remote git:hook daemon daemon:stop daemon:status completions man shim init static help" -f -a "buildpacks:set" -d 'Set the app\'s buildpack (a shipped name such as `python`, a directory or a git URL)'
complete -c dyno -n "__fish_dyno_using_subcommand help; and not __fish_seen_subcommand_from up apps apps:create apps:info apps:destroy apps:rename ps ps:scale logs releases run dash releases:info releases:rollback releases:output config config:get config:set config:unset ps:restart ps:stop ps:kill run:detached domains domains:add domains:remove drains drains:add drains:remove ps:idle certs builds builds:output buildpacks buildpacks:set buildpacks:add buildpacks:remove buildpacks:clear stack git:remote git:hook daemon daemon:stop daemon:status completions man shim init static help" -f -a "buildpacks:add" -d 'Add a buildpack to the app\'s list (at the end, or at --index)'
complete -c dyno -n "__fish_dyno_using_subcommand help; and not __fish_seen_subcommand_from up apps apps:create apps:info apps:destroy apps:rename ps ps:scale logs releases run dash releases:info releases:rollback releases:output config config:get config:set config:unset ps:restart ps:stop ps:kill run:detached domains domains:add domains:remove drains drains:add drains:remove ps:idle certs builds builds:output buildpacks buildpacks:set buildpacks:add buildpacks:remove buildpacks:clear stack git:remote git:hook daemon daemon:stop daemon:status completions man shim init static help" -f -a "buildpacks:remove" -d 'Remove a buildpack from the app\'s list (by URL or --index)'
complete -c dyno -n "__fish_dyno_using_subcommand help; and not __fish_seen_subcommand_from up apps apps:create apps:info apps:destroy apps:rename ps ps:scale logs releases run dash releases:info releases:rollback releases:output config config:get config:set config:unset ps:restart ps:stop ps:kill run:detached domains domains:add domains:remove drains drains:add drains:remove ps:idle certs builds builds:output buildpacks buildpacks:set buildpacks:add buildpacks:remove buildpacks:clear stack git:remote git:hook daemon daemon:stop daemon:status completions man shim init static help" -f -a "buildpacks:clear" -d 'Clear the app\'s buildpacks: the next build detects them again'
complete -c dyno -n "__fish_dyno_using_subcommand help; and not __fish_seen_subcommand_from up apps apps:create apps:info apps:destroy apps:rename ps ps:scale logs releases run dash releases:info releases:rollback releases:output config config:get config:set config:unset ps:restart ps:stop ps:kill run:detached domains domains:add domains:remove drains drains:add drains:remove ps:idle certs builds builds:output buildpacks buildpacks:set buildpacks:add buildpacks:remove buildpacks:clear stack git:remote git:hook daemon daemon:stop daemon:status completions man shim init static help" -f -a "stack" -d 'Show the stack: the runtimes (python3, node, ruby, go) dynos and builds get from the host'
complete -c dyno -n "__fish_dyno_using_subcommand help; and not __fish_seen_subcommand_from up apps apps:create apps:info apps:destroy apps:rename ps ps:scale logs releases run dash releases:info releases:rollback releases:output config config:get config:set config:unset ps:restart ps:stop ps:kill run:detached domains domains:add domains:remove drains drains:add drains:remove ps:idle certs builds builds:output buildpacks buildpacks:set buildpacks:add buildpacks:remove buildpacks:clear stack git:remote git:hook daemon daemon:stop daemon:status completions man shim init static help" -f -a "git:remote" -d 'Add a git remote `dyno` for the app: `git push dyno main` then deploys'
complete -c dyno -n "__fish_dyno_using_subcommand help; and not __fish_seen_subcommand_from up apps apps:create apps:info apps:destroy apps:rename ps ps:scale logs releases run dash releases:info releases:rollback releases:output config config:get config:set config:unset ps:restart ps:stop ps:kill run:detached domains domains:add domains:remove drains drains:add drains:remove ps:idle certs builds builds:output buildpacks buildpacks:set buildpacks:add buildpacks:remove buildpacks:clear stack git:remote git:hook daemon daemon:stop daemon:status completions man shim init static help" -f -a "git:hook" -d 'A git hook of the apps\' repositories (internal)'
complete -c dyno -n "__fish_dyno_using_subcommand help; and not __fish_seen_subcommand_from up apps apps:create apps:info apps:destroy apps:rename ps ps:scale logs releases run dash releases:info releases:rollback releases:output config config:get config:set config:unset ps:restart ps:stop ps:kill run:detached domains domains:add domains:remove drains drains:add drains:remove ps:idle certs builds builds:output buildpacks buildpacks:set buildpacks:add buildpacks:remove buildpacks:clear stack git:remote git:hook daemon daemon:stop daemon:status completions man shim init static help" -f -a "daemon" -d 'Run the daemon in the foreground (the CLI starts it by itself when needed)'
complete -c dyno -n "__fish_dyno_using_subcommand help; and not __fish_seen_subcommand_from up apps apps:create apps:info apps:destroy apps:rename ps ps:scale logs releases run dash releases:info releases:rollback releases:output config config:get config:set config:unset ps:restart ps:stop ps:kill run:detached domains domains:add domains:remove drains drains:add drains:remove ps:idle certs builds builds:output buildpacks buildpacks:set buildpacks:add buildpacks:remove buildpacks:clear stack git:remote git:hook daemon daemon:stop daemon:status completions man shim init static help" -f -a "daemon:stop" -d 'Stop the daemon and, unless --keep-dynos, every dyno'
complete -c dyno -n "__fish_dyno_using_subcommand help; and not __fish_seen_subcommand_from up apps apps:create apps:info apps:destroy apps:rename ps ps:scale logs releases run dash releases:info releases:rollback releases:output config config:get config:set config:unset ps:restart ps:stop ps:kill run:detached domains domains:add domains:remove drains drains:add drains:remove ps:idle certs builds builds:output buildpacks buildpacks:set buildpacks:add buildpacks:remove buildpacks:clear stack git:remote git:hook daemon daemon:stop daemon:status completions man shim init static help" -f -a "daemon:status" -d 'Show whether the daemon runs, its version and the router\'s address'
complete -c dyno -n "__fish_dyno_using_subcommand help; and not __fish_seen_subcommand_from up apps apps:create apps:info apps:destroy apps:rename ps ps:scale logs releases run dash releases:info releases:rollback releases:output config config:get config:set config:unset ps:restart ps:stop ps:kill run:detached domains domains:add domains:remove drains drains:add drains:remove ps:idle certs builds builds:output buildpacks buildpacks:set buildpacks:add buildpacks:remove buildpacks:clear stack git:remote git:hook daemon daemon:stop daemon:status completions man shim init static help" -f -a "completions" -d 'Print shell completions'
complete -c dyno -n "__fish_dyno_using_subcommand help; and not __fish_seen_subcommand_from up apps apps:create apps:info apps:destroy apps:rename ps ps:scale logs releases run dash releases:info releases:rollback releases:output config config:get config:set config:unset ps:restart ps:stop ps:kill run:detached domains domains:add domains:remove drains drains:add drains:remove ps:idle certs builds builds:output buildpacks buildpacks:set buildpacks:add buildpacks:remove buildpacks:clear stack git:remote git:hook daemon daemon:stop daemon:status completions man shim init static help" -f -a "man" -d 'Write man pages into a directory'
complete -c dyno -n "__fish_dyno_using_subcommand help; and not __fish_seen_subcommand_from up apps apps:create apps:info apps:destroy apps:rename ps ps:scale logs releases run dash releases:info releases:rollback releases:output config config:get config:set config:unset ps:restart ps:stop ps:kill run:detached domains domains:add domains:remove drains drains:add drains:remove ps:idle certs builds builds:output buildpacks buildpacks:set buildpacks:add buildpacks:remove buildpacks:clear stack git:remote git:hook daemon daemon:stop daemon:status completions man shim init static help" -f -a "shim" -d 'Per-dyno helper (internal): creates and holds one container'
complete -c dyno -n "__fish_dyno_using_subcommand help; and not __fish_seen_subcommand_from up apps apps:create apps:info apps:destroy apps:rename ps ps:scale logs releases run dash releases:info releases:rollback releases:output config config:get config:set config:unset ps:restart ps:stop ps:kill run:detached domains domains:add domains:remove drains drains:add drains:remove ps:idle certs builds builds:output buildpacks buildpacks:set buildpacks:add buildpacks:remove buildpacks:clear stack git:remote git:hook daemon daemon:stop daemon:status completions man shim init static help" -f -a "init" -d 'PID 1 inside a dyno (internal)'
complete -c dyno -n "__fish_dyno_using_subcommand help; and not __fish_seen_subcommand_from up apps apps:create apps:info apps:destroy apps:rename ps ps:scale logs releases run dash releases:info releases:rollback releases:output config config:get config:set config:unset ps:restart ps:stop ps:kill run:detached domains domains:add domains:remove drains drains:add drains:remove ps:idle certs builds builds:output buildpacks buildpacks:set buildpacks:add buildpacks:remove buildpacks:clear stack git:remote git:hook daemon daemon:stop daemon:status completions man shim init static help" -f -a "static" -d 'The static buildpack\'s web process: serves the app\'s files on $PORT (internal)'
complete -c dyno -n "__fish_dyno_using_subcommand help; and not __fish_seen_subcommand_from up apps apps:create apps:info apps:destroy apps:rename ps ps:scale logs releases run dash releases:info releases:rollback releases:output config config:get config:set config:unset ps:restart ps:stop ps:kill run:detached domains domains:add domains:remove drains drains:add drains:remove ps:idle certs builds builds:output buildpacks buildpacks:set buildpacks:add buildpacks:remove buildpacks:clear stack git:remote git:hook daemon daemon:stop daemon:status completions man shim init static help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
