package io.longdoc.job.bench;

import io.longdoc.engine.model.LlamaWeights;
import io.longdoc.engine.model.ModelConfig;
import io.longdoc.engine.model.Tensor;
import io.longdoc.engine.tokenizer.SentencePieceTokenizer;
import java.io.BufferedOutputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Writes a model in llama2.c's checkpoint format (version 0: a 7-int header, FP32 weights) and
 * its tokenizer.bin, so the benchmark can run llama2.c's run.c on exactly the same weights.
 * run.c uses Meta's interleaved RoPE layout, so q/k rows are permuted back from HF's rotate_half.
 */
final class Llama2cExport {
    private Llama2cExport() {
    }

    static void writeModel(LlamaWeights w, Path out) throws IOException {
        ModelConfig c = w.config;
        boolean shared = w.lmHead == w.embedding;
        try (OutputStream os = new BufferedOutputStream(Files.newOutputStream(out), 1 << 20)) {
            ByteBuffer header = ByteBuffer.allocate(28).order(ByteOrder.LITTLE_ENDIAN);
            header.putInt(c.dim()).putInt(c.hiddenDim()).putInt(c.layers()).putInt(c.heads()).putInt(c.kvHeads())
                    .putInt(shared ? c.vocabSize() : -c.vocabSize()).putInt(c.maxPositions());
            os.write(header.array());
            writeTensor(os, w.embedding, 0);
            for (LlamaWeights.Layer l : w.layers) {
                writeFloats(os, l.attnNorm);
            }
            for (LlamaWeights.Layer l : w.layers) {
                writeTensor(os, l.wq, c.headDim());
            }
            for (LlamaWeights.Layer l : w.layers) {
                writeTensor(os, l.wk, c.headDim());
            }
            for (LlamaWeights.Layer l : w.layers) {
                writeTensor(os, l.wv, 0);
            }
            for (LlamaWeights.Layer l : w.layers) {
                writeTensor(os, l.wo, 0);
            }
            for (LlamaWeights.Layer l : w.layers) {
                writeFloats(os, l.ffnNorm);
            }
            for (LlamaWeights.Layer l : w.layers) {
                writeTensor(os, l.gate, 0);
            }
            for (LlamaWeights.Layer l : w.layers) {
                writeTensor(os, l.down, 0);
            }
            for (LlamaWeights.Layer l : w.layers) {
                writeTensor(os, l.up, 0);
            }
            writeFloats(os, w.finalNorm);
            writeFloats(os, new float[c.maxPositions() * c.headDim()]); // unused freq_cis tables
            if (!shared) {
                writeTensor(os, w.lmHead, 0);
            }
        }
    }

    /** Rows in file order; with headDim > 0, HF's rotate_half rows are put back in interleaved order. */
    private static void writeTensor(OutputStream os, Tensor t, int headDim) throws IOException {
        float[] row = new float[t.cols()];
        short[] scratch = new short[t.cols()];
        ByteBuffer buf = ByteBuffer.allocate(t.cols() * 4).order(ByteOrder.LITTLE_ENDIAN);
        for (int r = 0; r < t.rows(); r++) {
            int src = r;
            if (headDim > 0) {
                int head = r / headDim, i = (r % headDim) / 2, j = r % 2, half = headDim / 2;
                src = head * headDim + j * half + i;
            }
            t.readRow(src, row, scratch);
            buf.clear();
            buf.asFloatBuffer().put(row);
            os.write(buf.array());
        }
    }

    private static void writeFloats(OutputStream os, float[] v) throws IOException {
        ByteBuffer buf = ByteBuffer.allocate(v.length * 4).order(ByteOrder.LITTLE_ENDIAN);
        buf.asFloatBuffer().put(v);
        os.write(buf.array());
    }

    /** run.c's tokenizer.bin: max token length, then per piece its score, byte length and bytes. */
    static void writeTokenizer(SentencePieceTokenizer tok, int vocab, Path out) throws IOException {
        byte[][] pieces = new byte[vocab][];
        int maxLen = 1;
        for (int i = 0; i < vocab; i++) {
            String p = i < tok.vocabSize() ? tok.model().piece(i).replace('\u2581', ' ') : "<pad>";
            pieces[i] = p.getBytes(StandardCharsets.UTF_8);
            maxLen = Math.max(maxLen, pieces[i].length);
        }
        try (DataOutputStream os = new DataOutputStream(new BufferedOutputStream(Files.newOutputStream(out)))) {
            os.writeInt(Integer.reverseBytes(maxLen));
            for (int i = 0; i < vocab; i++) {
                float score = i < tok.vocabSize() ? tok.model().score(i) : 0f;
                os.writeInt(Integer.reverseBytes(Float.floatToIntBits(score)));
                os.writeInt(Integer.reverseBytes(pieces[i].length));
                os.write(pieces[i]);
            }
        }
    }
}
