/** The `--help` text of the reference client. */
export const usageText = `Usage: npm run client -- [options] [PROMPT...]
       node dist/client/cli/main.js [options] [PROMPT...]
       some-command | npm run client -- [options] -

Encrypts one generation request, sends it to a pool (the local stack or a RunPod endpoint),
and prints the generated text to stdout as it arrives.

Request (PROMPT, --prompt-file, --chat or --messages-file):
  PROMPT                      raw completion prompt; several words are joined with spaces;
                              a lone - reads it from standard input
      --prompt-file FILE      the PROMPT is FILE's text, exactly as it is (a last newline
                              included); - is standard input; with --system, the user message
  -c, --chat TEXT             chat request: TEXT is the user message ("messages", not "prompt")
  -s, --system TEXT           chat request: a system message before the user message
                              (the user message is --chat TEXT, PROMPT or --prompt-file)
      --messages-file FILE    chat request: FILE holds the whole JSON array
                              [{"role": "system"|"user"|"assistant", "content": "..."}, ...]
  -m, --model NAME            the model; required when the endpoint serves several

Sampling (sent as "sampling_params" with vLLM's names; the pool's defaults when omitted):
  -n, --max-tokens N          most tokens to generate (whole number >= 1)
  -t, --temperature T         in [0, 2]; 0 is greedy
      --top-p P               in (0, 1]
      --top-k K               whole number in [-1, 100000]; -1 or 0 turn it off
      --min-p P               in [0, 1]
      --seed N                whole number in [0, 4294967295]
      --stop S                stop string; repeat for several (at most 16)
      --choices N             generate N choices (vLLM's "n", 1-16); choice 0 streams, the
                              others follow it, each after a "[choice i]" line
      --logprobs N            each token's logprob and its N top alternatives (0-20); shown
                              with --json
      --repeat-penalty R      in (0, 10]
      --presence-penalty P    in [-2, 2]
      --frequency-penalty P   in [-2, 2]

Endpoint:
  -u, --url URL               base URL (default: $POOL_URL, else http://127.0.0.1:8000);
                              RunPod: https://api.runpod.ai/v2/<endpoint id>
      --api-key KEY           sent as "Authorization: Bearer KEY" (default: $RUNPOD_API_KEY;
                              prefer the variable: arguments show in process lists)
      --no-stream             use /runsync and print the text when the job has ended
      --encrypt-output        ask for the output encrypted too (the pool may also always do it);
                              encrypted chunks are decrypted here with the same key
      --retries N             a job refused for overload (HTTP 429 QUEUE_FULL, 503
                              MODEL_UNAVAILABLE or REDIS_UNAVAILABLE) is sent again after the
                              pool's Retry-After, at most N times (default 3; 0: never); each wait
                              is shown on stderr

Encryption key (the first found is used; it is never printed):
  -k, --key-file FILE         a file holding the key (or a comma-separated list: the first encrypts)
  $ENCRYPTION_KEY             the same list, as the pool's processes take it
  local key file              $DATA_DIR/encryption.key, DATA_DIR defaulting to <package>/.data:
                              the key \`npm start\` generates when ENCRYPTION_KEY is unset
      --client NAME           this client's name in the pool's CLIENT_KEYS_FILE (default:
                              $POOL_CLIENT; none: the pool's own key); the key above is then
                              the client's own, and only it can read the client's jobs

Output:
      --json                  print each stream chunk as a JSON line instead of the text
  -q, --quiet                 no summary line on stderr
  -h, --help                  show this help

Exit status: 0 completed; 1 the job failed, timed out or was cancelled ("error: CODE: message"
on stderr); 2 usage error or no usable key; 3 connection or HTTP error; 130 interrupted
(Ctrl-C cancels the job first).
`;
