package io.longdoc.engine.constrain;

import io.longdoc.engine.tokenizer.Tokenizer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * The vocabulary as a trie over the bytes each token adds to the text, so a token mask can walk
 * every token that shares a prefix once and drop whole subtrees as soon as a byte is refused.
 * Ids that add no dependable bytes (control, unknown and special tokens) are not in it.
 */
public final class TokenTrie {
    private final int vocabSize;
    private final byte[][] tokenBytes;       // by id; null when the id is not in the trie
    // Node n: its children are childStart[n]..childStart[n+1]-1 in childLabel/childNode;
    // the ids ending at it are tokensStart[n]..tokensStart[n+1]-1 in tokens.
    private final int[] childStart, childNode, tokensStart, tokens;
    private final byte[] childLabel;
    private final int longestToken;
    /** Masks already computed, by state key (LRU): inside a long string most steps repeat one key. */
    private final java.util.LinkedHashMap<List<Object>, long[]> masks = new java.util.LinkedHashMap<>(64, 0.75f, true) {
        @Override
        protected boolean removeEldestEntry(Map.Entry<List<Object>, long[]> eldest) {
            return size() > MASK_CACHE_ENTRIES;
        }
    };
    private static final int MASK_CACHE_ENTRIES = 1024;
    private long maskHits, maskMisses;

    public TokenTrie(Tokenizer tokenizer) {
        this(bytesOf(tokenizer));
    }

    /** From each id's bytes (null for ids that may never be generated under a constraint). */
    public TokenTrie(byte[][] tokenBytes) {
        this.vocabSize = tokenBytes.length;
        this.tokenBytes = tokenBytes;
        // Build with maps, then flatten into arrays in breadth-first order.
        List<TreeMap<Integer, Integer>> children = new ArrayList<>();
        List<List<Integer>> ends = new ArrayList<>();
        children.add(new TreeMap<>());
        ends.add(new ArrayList<>());
        for (int id = 0; id < tokenBytes.length; id++) {
            byte[] bytes = tokenBytes[id];
            if (bytes == null || bytes.length == 0) {
                continue;
            }
            int node = 0;
            for (byte b : bytes) {
                Integer next = children.get(node).get(b & 0xFF);
                if (next == null) {
                    next = children.size();
                    children.get(node).put(b & 0xFF, next);
                    children.add(new TreeMap<>());
                    ends.add(new ArrayList<>());
                }
                node = next;
            }
            ends.get(node).add(id);
        }
        int longest = 0;
        for (byte[] bytes : tokenBytes) {
            longest = Math.max(longest, bytes == null ? 0 : bytes.length);
        }
        this.longestToken = longest;
        int n = children.size();
        childStart = new int[n + 1];
        tokensStart = new int[n + 1];
        int edges = 0, ended = 0;
        for (int i = 0; i < n; i++) {
            childStart[i] = edges;
            tokensStart[i] = ended;
            edges += children.get(i).size();
            ended += ends.get(i).size();
        }
        childStart[n] = edges;
        tokensStart[n] = ended;
        childNode = new int[edges];
        childLabel = new byte[edges];
        tokens = new int[ended];
        for (int i = 0; i < n; i++) {
            int e = childStart[i];
            for (Map.Entry<Integer, Integer> c : children.get(i).entrySet()) {
                childLabel[e] = (byte) (int) c.getKey();
                childNode[e++] = c.getValue();
            }
            int t = tokensStart[i];
            for (int id : ends.get(i)) {
                tokens[t++] = id;
            }
        }
    }

    private static byte[][] bytesOf(Tokenizer tokenizer) {
        byte[][] out = new byte[tokenizer.vocabSize()][];
        for (int id = 0; id < out.length; id++) {
            out[id] = tokenizer.tokenBytes(id);
        }
        return out;
    }

    public int vocabSize() {
        return vocabSize;
    }

    /** The bytes of a token, or null when it is not in the trie. */
    public byte[] bytes(int id) {
        return id >= 0 && id < vocabSize ? tokenBytes[id] : null;
    }

    public int nodes() {
        return childStart.length - 1;
    }

    /**
     * Marks in {@code allowed} every token whose bytes all continue {@code state}; returns how many.
     * Depth-first over the trie: a refused byte prunes every token below it.
     */
    public int allowed(JsonGrammar.State state, boolean[] allowed) {
        Arrays.fill(allowed, false);
        return walk(0, state, allowed);
    }

    /**
     * The allowed tokens of {@code state} as a bit set (token i at bit i % 64 of word i / 64),
     * cached under the state's key: states that no token can tell apart share one mask.
     */
    public synchronized long[] mask(JsonGrammar.State state) {
        List<Object> key = state.key(longestToken);
        long[] bits = masks.get(key);
        if (bits != null) {
            maskHits++;
            return bits;
        }
        maskMisses++;
        boolean[] allowed = new boolean[vocabSize];
        allowed(state, allowed);
        bits = new long[(vocabSize + 63) / 64];
        for (int id = 0; id < vocabSize; id++) {
            if (allowed[id]) {
                bits[id >>> 6] |= 1L << (id & 63);
            }
        }
        masks.put(key, bits);
        return bits;
    }

    /** {hits, misses} of the mask cache so far. */
    public synchronized long[] maskCacheStats() {
        return new long[] {maskHits, maskMisses};
    }

    private int walk(int node, JsonGrammar.State state, boolean[] allowed) {
        int count = 0;
        for (int e = childStart[node]; e < childStart[node + 1]; e++) {
            JsonGrammar.State next = JsonGrammar.feed(state, childLabel[e]);
            if (next == null) {
                continue;
            }
            int child = childNode[e];
            for (int t = tokensStart[child]; t < tokensStart[child + 1]; t++) {
                allowed[tokens[t]] = true;
                count++;
            }
            count += walk(child, next, allowed);
        }
        return count;
    }
}
