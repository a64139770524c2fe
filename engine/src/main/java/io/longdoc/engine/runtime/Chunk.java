package io.longdoc.engine.runtime;

/**
 * One sequence's share of a forward step: {@code tokens} at positions
 * [startPos, startPos + tokens.length), its KV blocks, and which of its tokens need logits.
 *
 * @param blockTable KV cache block ids of the sequence, covering every position of this chunk
 * @param logitsAt indices into {@code tokens} whose next-token logits are wanted
 * @param ropeSeqLen sequence length that selects the RoPE base (dynamic NTK scaling only)
 */
public record Chunk(int[] blockTable, int startPos, int[] tokens, int[] logitsAt, int ropeSeqLen) {
}
