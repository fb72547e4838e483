/** Reading a process's Prometheus `/metrics` in tests. */

/** The value of one sample (`name{labels} value`, labels as written), or 0 when it is absent. */
export async function metricValue(url: string, sample: string, apiKey?: string): Promise<number> {
  const response = await fetch(`${url}/metrics`, {
    headers: apiKey === undefined ? {} : { authorization: `Bearer ${apiKey}` },
  });
  const line = (await response.text()).split("\n").find((row) => row.startsWith(`${sample} `));
  return line === undefined ? 0 : Number(line.slice(sample.length + 1));
}
