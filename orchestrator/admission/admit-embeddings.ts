import { InvalidRequestError } from "../../shared/errors/index.js";

/**
 * An embeddings request (`input`) names a model whose `MODELS` entry has `?embeddings=true`: only
 * such a model's threads hold an embedding context. Refused at admission otherwise, nothing queued.
 */
export function checkServesEmbeddings(
  model: string,
  policy: { readonly embeddingModels?: readonly string[] | undefined },
): void {
  if (policy.embeddingModels?.includes(model) === true) return;
  throw new InvalidRequestError(
    `request.input: model "${model}" does not serve embeddings; its MODELS entry needs the setting ?embeddings=true`,
  );
}
