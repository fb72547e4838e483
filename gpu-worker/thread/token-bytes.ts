import { type LlamaModel, LlamaVocabularyType } from "node-llama-cpp";

/**
 * The most UTF-8 bytes of text one token of `model` stands for (its longest non-special token,
 * plus one for the leading space a lone token is shown without), or `undefined` where text bytes
 * say nothing sure of the token count: tokenizers that drop or fold characters (WordPiece, T5's
 * Unigram) and vocabularies the file does not list. A text of `b` bytes is then at least
 * `b / maxTokenBytes` tokens, so a prompt over `contextSize × maxTokenBytes` bytes cannot fit and
 * is refused before it is tokenized (a 7 MB prompt took a sequence 3.5 s to tokenize, then failed).
 */
export function maxTokenBytes(model: LlamaModel): number | undefined {
  if (
    model.vocabularyType !== LlamaVocabularyType.spm &&
    model.vocabularyType !== LlamaVocabularyType.bpe
  ) {
    return undefined;
  }
  const count = model.fileInfo.metadata.tokenizer?.ggml?.tokens?.length;
  if (count === undefined || count === 0) return undefined;
  let longest = 0;
  for (let token = 0; token < count; token += 1) {
    if (model.isSpecialToken(token as never)) continue;
    longest = Math.max(longest, Buffer.byteLength(model.detokenize([token as never])));
  }
  return longest + 1;
}
