//! `warmstart completions SHELL`: clap_complete's script for the commands and flags, and, for
//! bash, stage names completed from the spec on the command line.
//!
//! Why a hidden command and a wrapper: clap_complete's static scripts know the command tree,
//! not the stage names, which live in the spec a user is typing about. The bash script asks
//! `warmstart complete-stages SPEC` (silent, exit 0 on any error, so a half-typed spec never
//! prints into the prompt) wherever a stage is expected: `predict SPEC <stage>`, `export SPEC
//! <stage>` and `run SPEC --force <stage>`; everywhere else it defers to clap's function.
//! fish gets the same through a condition function added after clap's `complete` lines, zsh
//! through a wrapper registered with `compdef` when the script is sourced (`source <(warmstart
//! completions zsh)`); installed as an autoloaded `_warmstart` in `$fpath`, zsh runs clap's
//! function directly and offers commands and flags only.

use std::io::Write;
use std::path::Path;

use clap::CommandFactory;

/// Every option of every command that takes a value (the next word is then not a positional
/// argument), as a bash `case` pattern — read from the clap definition, so it cannot drift.
fn options_with_values() -> String {
    fn collect(cmd: &clap::Command, out: &mut Vec<String>) {
        for a in cmd
            .get_arguments()
            .filter(|a| !a.is_positional() && a.get_action().takes_values())
        {
            out.extend(a.get_long().map(|l| format!("--{l}")));
            out.extend(a.get_short().map(|c| format!("-{c}")));
        }
        cmd.get_subcommands().for_each(|sub| collect(sub, out));
    }
    let mut out = Vec::new();
    collect(&super::Cli::command(), &mut out);
    out.sort();
    out.dedup();
    out.join("|")
}

/// Writes the completion script for `shell` to stdout.
pub fn print(shell: clap_complete::Shell) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    clap_complete::generate(shell, &mut super::Cli::command(), "warmstart", &mut out);
    match shell {
        clap_complete::Shell::Bash => out.write_all(bash_stages().as_bytes())?,
        clap_complete::Shell::Fish => out.write_all(fish_stages().as_bytes())?,
        clap_complete::Shell::Zsh => out.write_all(zsh_stages().as_bytes())?,
        _ => {}
    }
    Ok(())
}

/// The part bash and zsh share (their syntax agrees here): walk the words before the cursor
/// (`$1`-style array `words`, from `first` to before `cursor`), find the subcommand and the
/// spec, and succeed — with `$spec` set — where a stage name is expected.
fn stage_position(words: &str, first: usize, cursor: &str, prev: &str) -> String {
    let takes_value = options_with_values();
    format!(
        r#"    local sub="" spec="" npos=0 skip=0 i w prev="{prev}"
    for ((i = {first}; i < {cursor}; i++)); do
        w="${{{words}[i]}}"
        if ((skip)); then skip=0; continue; fi
        case "$w" in
            {takes_value}) skip=1; continue ;;
            -*) continue ;;
        esac
        if [[ -z "$sub" ]]; then sub="$w"; continue; fi
        npos=$((npos + 1))
        [[ $npos -eq 1 ]] && spec="$w"
    done
    if [[ -n "$spec" ]] && {{ [[ "$prev" == "--force" && "$sub" == "run" ]] ||
        [[ ( "$sub" == "predict" || "$sub" == "export" ) && $npos -eq 1 && "$prev" != -* ]]; }}; then"#
    )
}

/// The bash wrapper: stage names where a stage is expected, clap's `_warmstart` elsewhere.
fn bash_stages() -> String {
    let walk = stage_position("COMP_WORDS", 1, "COMP_CWORD", "${COMP_WORDS[COMP_CWORD-1]}");
    format!(
        r#"
# Stage names from the spec (warmstart complete-stages SPEC) where a stage is expected.
_warmstart_with_stages() {{
    local cur="${{COMP_WORDS[COMP_CWORD]}}"
{walk}
        COMPREPLY=($(compgen -W "$(warmstart complete-stages "$spec" 2>/dev/null)" -- "$cur"))
        return 0
    fi
    _warmstart "$@"
}}
complete -F _warmstart_with_stages -o bashdefault -o default warmstart
"#
    )
}

/// The fish addition: `__warmstart_stage_spec` prints the spec when the word being completed
/// is a stage (the same places as in bash), and the stage names complete there.
fn fish_stages() -> String {
    let takes_value = options_with_values().replace('|', " ");
    format!(
        r#"
# Stage names from the spec (warmstart complete-stages SPEC) where a stage is expected.
function __warmstart_stage_spec
    set -l words (commandline -opc)
    set -l sub ""
    set -l spec ""
    set -l npos 0
    set -l skip 0
    for w in $words[2..-1]
        if test $skip -eq 1
            set skip 0
            continue
        end
        if contains -- $w {takes_value}
            set skip 1
            continue
        end
        if string match -q -- '-*' $w
            continue
        end
        if test -z "$sub"
            set sub $w
            continue
        end
        set npos (math $npos + 1)
        test $npos -eq 1; and set spec $w
    end
    test -n "$spec"; or return 1
    set -l prev $words[-1]
    if test "$sub" = run -a "$prev" = --force
        echo $spec
        return 0
    end
    if contains -- $sub predict export; and test $npos -eq 1; and not string match -q -- '-*' $prev
        echo $spec
        return 0
    end
    return 1
end
complete -c warmstart -n __warmstart_stage_spec -f -a '(warmstart complete-stages (__warmstart_stage_spec) 2>/dev/null)'
# `--force` takes a value, so fish completes it as the option's argument, not a positional.
complete -c warmstart -n __warmstart_stage_spec -l force -x -a '(warmstart complete-stages (__warmstart_stage_spec) 2>/dev/null)'
"#
    )
}

/// The zsh wrapper: the bash logic over `$words` / `$CURRENT`; clap's `_warmstart` elsewhere.
fn zsh_stages() -> String {
    let walk = stage_position("words", 2, "CURRENT", "${words[CURRENT-1]}");
    format!(
        r#"
# Stage names from the spec (warmstart complete-stages SPEC) where a stage is expected.
_warmstart_with_stages() {{
{walk}
        local -a stages
        stages=(${{(f)"$(warmstart complete-stages "$spec" 2>/dev/null)"}})
        compadd -- $stages
        return 0
    fi
    _warmstart "$@"
}}
if [ "$funcstack[1]" != "_warmstart" ]; then
    compdef _warmstart_with_stages warmstart
fi
"#
    )
}

/// `warmstart complete-stages SPEC`: the spec's stage names, one per line, in file order;
/// nothing when the spec does not load (completion must stay silent).
pub fn stages(spec: &Path) -> i32 {
    if let Ok(study) = crate::pipeline::load(spec, &[]) {
        if let Some(v) = study.variants.first() {
            for s in &v.stages {
                println!("{}", s.name);
            }
        }
    }
    0
}
