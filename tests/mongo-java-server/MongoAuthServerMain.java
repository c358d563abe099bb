// mongo-java-server (in-memory backend) with SCRAM authentication enforced, for tests that need
// a MongoDB wire-protocol server that refuses unauthenticated clients and wrong passwords.
//
// Run (Java 17 single-file source launch, no javac step):
//   java -cp '.prereqs/mongo-java-server/*' tests/mongo-java-server/MongoAuthServerMain.java \
//        HOST PORT --users FILE          (or --users - to read the user list from stdin)
// Options: --no-speculative-auth   ignore speculativeAuthenticate in hello/isMaster (the driver then
//                                  authenticates with saslStart/saslContinue afterwards)
//          --log-commands          log every command's name, database, opcode and user (never documents)
// HOST may be an IPv4 or IPv6 address (::1, or [::1]); PORT 0 picks a free port. Once the socket
// is bound it prints "listening on HOST:PORT" (HOST as given, PORT the bound port) and blocks until
// killed. The user file is described in COMPAT.md; passwords are never printed.
//
// How it works: AuthBackend subclasses the library's MemoryBackend. The library hands every
// command to MongoBackend.handleCommand(channel, db, command, document) together with the Netty
// channel of the client connection, so authentication state is kept per channel (a channel
// attribute). Handshake and SASL commands are answered here; every other command is checked and
// then passed to MemoryBackend. The SCRAM code follows RFC 5802 / RFC 7677.
import de.bwaldvogel.mongo.MongoServer;
import de.bwaldvogel.mongo.backend.QueryResult;
import de.bwaldvogel.mongo.backend.memory.MemoryBackend;
import de.bwaldvogel.mongo.bson.BinData;
import de.bwaldvogel.mongo.bson.Document;
import de.bwaldvogel.mongo.exception.MongoServerError;
import de.bwaldvogel.mongo.wire.message.MongoMessage;
import de.bwaldvogel.mongo.wire.message.MongoQuery;
import io.netty.channel.Channel;
import io.netty.util.AttributeKey;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.security.SecureRandom;
import java.text.Normalizer;
import java.util.ArrayList;
import java.util.Base64;
import java.util.EnumMap;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

public class MongoAuthServerMain {
    public static void main(String[] args) throws Exception {
        String host = null;
        Integer port = null;
        String usersArg = null;
        boolean speculative = true;
        boolean logCommands = false;
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            if (a.equals("--users") && i + 1 < args.length) {
                usersArg = args[++i];
            } else if (a.equals("--no-speculative-auth")) {
                speculative = false;
            } else if (a.equals("--log-commands")) {
                logCommands = true;
            } else if (!a.startsWith("--") && host == null) {
                host = a;
            } else if (!a.startsWith("--") && port == null) {
                try {
                    port = Integer.parseInt(a);
                } catch (NumberFormatException e) {
                    usage("PORT must be a number, got " + a);
                }
            } else {
                usage("unexpected argument " + a);
            }
        }
        if (host == null || port == null || usersArg == null) {
            usage("HOST, PORT and --users are required");
        }
        if (host.startsWith("[") && host.endsWith("]")) {
            host = host.substring(1, host.length() - 1);
        }

        Map<UserKey, User> users;
        long t0 = System.nanoTime();
        try {
            users = usersArg.equals("-")
                ? UserFile.parse(new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8)), "stdin")
                : UserFile.parse(Files.newBufferedReader(Path.of(usersArg), StandardCharsets.UTF_8), usersArg);
        } catch (IOException e) {
            System.err.println("MongoAuthServerMain: cannot read users from " + usersArg + ": " + e);
            System.exit(2);
            return;
        } catch (IllegalArgumentException e) {
            System.err.println("MongoAuthServerMain: cannot load users: " + e.getMessage());
            System.exit(2);
            return;
        }

        System.err.println("MongoAuthServerMain: " + users.size() + " users loaded, SCRAM keys derived in "
            + (System.nanoTime() - t0) / 1_000_000 + " ms");
        MongoServer server = new MongoServer(new AuthBackend(users, speculative, logCommands));
        try {
            server.bind(host, port);
        } catch (Exception e) { // Netty rethrows BindException (checked) without declaring it
            // MongoServer.bind leaves its Netty boss thread running after a failed bind (e.g. port in
            // use), which would keep the JVM alive: exit explicitly.
            System.err.println("MongoAuthServerMain: cannot listen on " + host + ":" + port + ": " + e);
            System.exit(1);
        }
        Runtime.getRuntime().addShutdownHook(new Thread(server::shutdownNow));
        InetSocketAddress bound = server.getLocalAddress();
        System.out.println("listening on " + host + ":" + bound.getPort());
        System.out.flush();
        Thread.currentThread().join(); // block until killed
    }

    private static void usage(String why) {
        System.err.println("MongoAuthServerMain: " + why);
        System.err.println("usage: MongoAuthServerMain HOST PORT --users FILE|- [--no-speculative-auth] [--log-commands]");
        System.exit(2);
    }
}

/** The two SCRAM variants MongoDB offers. */
enum Mechanism {
    SCRAM_SHA_1("SCRAM-SHA-1", "HmacSHA1", "SHA-1", 10000, 16),
    SCRAM_SHA_256("SCRAM-SHA-256", "HmacSHA256", "SHA-256", 15000, 28);

    final String wireName;
    final String macAlgorithm;
    final String digestAlgorithm;
    final int iterations; // mongod's defaults (scramIterationCount / scramSHA256IterationCount)
    final int saltLength;

    Mechanism(String wireName, String macAlgorithm, String digestAlgorithm, int iterations, int saltLength) {
        this.wireName = wireName;
        this.macAlgorithm = macAlgorithm;
        this.digestAlgorithm = digestAlgorithm;
        this.iterations = iterations;
        this.saltLength = saltLength;
    }

    static Mechanism byWireName(String name) {
        for (Mechanism m : values()) {
            if (m.wireName.equals(name)) {
                return m;
            }
        }
        return null;
    }
}

record UserKey(String db, String name) {
}

/** A role grant: db == null means "every database" (root, readWriteAnyDatabase). */
record Grant(String role, String db) {
    boolean coversWrite(String database) {
        return db == null || db.equals(database);
    }

    boolean isOwnerOf(String database) {
        return db == null || (db.equals(database) && role.equals("dbOwner"));
    }
}

/** What the server keeps of a password: per mechanism the salt, StoredKey and ServerKey. */
record Credential(byte[] salt, int iterations, byte[] storedKey, byte[] serverKey) {
}

final class User {
    final String name;
    final String db;
    final List<Grant> grants;
    final Map<Mechanism, Credential> credentials;

    User(String name, String db, List<Grant> grants, Map<Mechanism, Credential> credentials) {
        this.name = name;
        this.db = db;
        this.grants = grants;
        this.credentials = credentials;
    }

    boolean anyDatabase() {
        return grants.stream().anyMatch(g -> g.db() == null);
    }

    @Override
    public String toString() {
        return name + "@" + db;
    }
}

/**
 * User file: one user per line, four fields separated by spaces or tabs:
 *   USER AUTH_DB ROLES PASSWORD
 * ROLES is a comma-separated list of readWrite@DB, dbOwner@DB, readWriteAnyDatabase, root.
 * Blank lines and lines starting with # are ignored. The password cannot contain whitespace.
 */
final class UserFile {
    private static final SecureRandom RANDOM = new SecureRandom();

    static Map<UserKey, User> parse(BufferedReader in, String source) throws IOException {
        Map<UserKey, User> users = new LinkedHashMap<>();
        String line;
        int n = 0;
        try (in) {
            while ((line = in.readLine()) != null) {
                n++;
                String t = line.strip();
                if (t.isEmpty() || t.startsWith("#")) {
                    continue;
                }
                String[] f = t.split("[ \t]+");
                if (f.length != 4) {
                    // never echo the line: it holds a password
                    throw new IllegalArgumentException(source + " line " + n + ": expected 4 fields (USER AUTH_DB ROLES PASSWORD), got " + f.length);
                }
                String name = f[0];
                String db = f[1];
                List<Grant> grants = parseRoles(f[2], source, n);
                String password = f[3];
                UserKey key = new UserKey(db, name);
                if (users.containsKey(key)) {
                    throw new IllegalArgumentException(source + " line " + n + ": user " + name + "@" + db + " defined twice");
                }
                Map<Mechanism, Credential> creds = new EnumMap<>(Mechanism.class);
                creds.put(Mechanism.SCRAM_SHA_1, derive(Mechanism.SCRAM_SHA_1, Scram.mongoSha1Password(name, password)));
                String prepped = SaslPrep.prepare(password);
                if (prepped == null || prepped.isEmpty()) {
                    throw new IllegalArgumentException(source + " line " + n + ": password of " + name + "@" + db + " is not allowed by SASLprep (SCRAM-SHA-256)");
                }
                creds.put(Mechanism.SCRAM_SHA_256, derive(Mechanism.SCRAM_SHA_256, prepped.getBytes(StandardCharsets.UTF_8)));
                users.put(key, new User(name, db, grants, creds));
            }
        }
        if (users.isEmpty()) {
            throw new IllegalArgumentException(source + ": no users defined");
        }
        return users;
    }

    private static List<Grant> parseRoles(String field, String source, int n) {
        List<Grant> grants = new ArrayList<>();
        for (String r : field.split(",")) {
            if (r.equals("root") || r.equals("readWriteAnyDatabase")) {
                grants.add(new Grant(r, null));
                continue;
            }
            int at = r.indexOf('@');
            String role = at < 0 ? r : r.substring(0, at);
            String db = at < 0 ? "" : r.substring(at + 1);
            if ((role.equals("readWrite") || role.equals("dbOwner")) && !db.isEmpty()) {
                grants.add(new Grant(role, db));
            } else {
                throw new IllegalArgumentException(source + " line " + n + ": unknown role '" + r
                    + "' (use readWrite@DB, dbOwner@DB, readWriteAnyDatabase or root)");
            }
        }
        return grants;
    }

    private static Credential derive(Mechanism m, byte[] normalizedPassword) {
        byte[] salt = new byte[m.saltLength];
        RANDOM.nextBytes(salt);
        byte[] salted = Scram.hi(m, normalizedPassword, salt, m.iterations);
        byte[] clientKey = Scram.hmac(m, salted, "Client Key");
        byte[] storedKey = Scram.hash(m, clientKey);
        byte[] serverKey = Scram.hmac(m, salted, "Server Key");
        return new Credential(salt, m.iterations, storedKey, serverKey);
    }
}

/** RFC 5802 primitives. */
final class Scram {
    static byte[] hmac(Mechanism m, byte[] key, byte[] data) {
        try {
            Mac mac = Mac.getInstance(m.macAlgorithm);
            mac.init(new SecretKeySpec(key, m.macAlgorithm));
            return mac.doFinal(data);
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException(e);
        }
    }

    static byte[] hmac(Mechanism m, byte[] key, String data) {
        return hmac(m, key, data.getBytes(StandardCharsets.UTF_8));
    }

    static byte[] hash(Mechanism m, byte[] data) {
        try {
            return MessageDigest.getInstance(m.digestAlgorithm).digest(data);
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException(e);
        }
    }

    /** Hi(str, salt, i): PBKDF2 with HMAC as the PRF and one output block. */
    static byte[] hi(Mechanism m, byte[] str, byte[] salt, int iterations) {
        try {
            Mac mac = Mac.getInstance(m.macAlgorithm);
            mac.init(new SecretKeySpec(str, m.macAlgorithm));
            mac.update(salt);
            mac.update(new byte[] {0, 0, 0, 1});
            byte[] u = mac.doFinal();
            byte[] result = u.clone();
            for (int i = 1; i < iterations; i++) {
                u = mac.doFinal(u);
                for (int j = 0; j < result.length; j++) {
                    result[j] ^= u[j];
                }
            }
            return result;
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException(e);
        }
    }

    /** MongoDB's SCRAM-SHA-1 uses hex(md5("user:mongo:password")) as the SCRAM password. */
    static byte[] mongoSha1Password(String user, String password) {
        try {
            byte[] d = MessageDigest.getInstance("MD5").digest((user + ":mongo:" + password).getBytes(StandardCharsets.UTF_8));
            StringBuilder sb = new StringBuilder();
            for (byte b : d) {
                sb.append(String.format("%02x", b & 0xff));
            }
            return sb.toString().getBytes(StandardCharsets.US_ASCII);
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException(e);
        }
    }
}

/**
 * SASLprep (RFC 4013) for stored passwords, approximated with Java's Unicode tables (which are
 * newer than the Unicode 3.2 that stringprep names). Printable ASCII passes through unchanged.
 * Returns null when the string contains a prohibited character or breaks the bidi rule.
 */
final class SaslPrep {
    static String prepare(String s) {
        if (s.chars().allMatch(c -> c >= 0x20 && c <= 0x7e)) {
            return s;
        }
        StringBuilder mapped = new StringBuilder();
        s.codePoints().forEach(cp -> {
            if (mapsToNothing(cp)) {
                return;
            }
            mapped.appendCodePoint(isNonAsciiSpace(cp) ? ' ' : cp);
        });
        String out = Normalizer.normalize(mapped, Normalizer.Form.NFKC);
        boolean randAl = false;
        boolean l = false;
        int[] cps = out.codePoints().toArray();
        for (int cp : cps) {
            int type = Character.getType(cp);
            if (isNonAsciiSpace(cp) || type == Character.CONTROL || type == Character.PRIVATE_USE
                || type == Character.SURROGATE || type == Character.UNASSIGNED
                || (cp >= 0xfdd0 && cp <= 0xfdef) || (cp & 0xfffe) == 0xfffe
                || (cp >= 0x2ff0 && cp <= 0x2ffb) || (cp >= 0x200e && cp <= 0x200f)
                || (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x206a && cp <= 0x206f)
                || (cp >= 0xfff9 && cp <= 0xfffd) || cp == 0x340 || cp == 0x341
                || (cp >= 0xe0001 && cp <= 0xe007f)) {
                return null;
            }
            byte dir = Character.getDirectionality(cp);
            if (dir == Character.DIRECTIONALITY_RIGHT_TO_LEFT || dir == Character.DIRECTIONALITY_RIGHT_TO_LEFT_ARABIC) {
                randAl = true;
            } else if (dir == Character.DIRECTIONALITY_LEFT_TO_RIGHT) {
                l = true;
            }
        }
        if (randAl) {
            if (l) {
                return null;
            }
            byte first = Character.getDirectionality(cps[0]);
            byte last = Character.getDirectionality(cps[cps.length - 1]);
            boolean firstOk = first == Character.DIRECTIONALITY_RIGHT_TO_LEFT || first == Character.DIRECTIONALITY_RIGHT_TO_LEFT_ARABIC;
            boolean lastOk = last == Character.DIRECTIONALITY_RIGHT_TO_LEFT || last == Character.DIRECTIONALITY_RIGHT_TO_LEFT_ARABIC;
            if (!firstOk || !lastOk) {
                return null;
            }
        }
        return out;
    }

    private static boolean isNonAsciiSpace(int cp) {
        return cp == 0xa0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200a) || cp == 0x202f
            || cp == 0x205f || cp == 0x3000;
    }

    private static boolean mapsToNothing(int cp) {
        return cp == 0xad || cp == 0x34f || cp == 0x1806 || (cp >= 0x180b && cp <= 0x180d)
            || (cp >= 0x200b && cp <= 0x200d) || cp == 0x2060 || (cp >= 0xfe00 && cp <= 0xfe0f)
            || cp == 0xfeff;
    }
}

/** One SCRAM exchange in progress on a connection. */
final class Conversation {
    final int id;
    final String db;
    final User user;
    final Mechanism mechanism;
    final Credential credential;
    final String gs2Header;
    final String clientFirstBare;
    final String serverFirst;
    final String nonce;
    final boolean skipEmptyExchange;
    boolean proofVerified;

    Conversation(int id, String db, User user, Mechanism mechanism, String gs2Header, String clientFirstBare,
                 String serverFirst, String nonce, boolean skipEmptyExchange) {
        this.id = id;
        this.db = db;
        this.user = user;
        this.mechanism = mechanism;
        this.credential = user.credentials.get(mechanism);
        this.gs2Header = gs2Header;
        this.clientFirstBare = clientFirstBare;
        this.serverFirst = serverFirst;
        this.nonce = nonce;
        this.skipEmptyExchange = skipEmptyExchange;
    }
}

/** Authentication state of one client connection. */
final class ConnState {
    final Map<UserKey, User> authenticated = new LinkedHashMap<>();
    final Map<Integer, Conversation> conversations = new HashMap<>();
    int nextConversationId = 1;
}

/** Thrown inside the SCRAM code; becomes an {ok: 0, code, codeName, errmsg} reply. */
final class CommandFailure extends Exception {
    private static final long serialVersionUID = 1L;
    final int code;
    final String codeName;

    CommandFailure(int code, String codeName, String message) {
        super(message, null, false, false);
        this.code = code;
        this.codeName = codeName;
    }

    static CommandFailure authenticationFailed() {
        return new CommandFailure(18, "AuthenticationFailed", "Authentication failed.");
    }

    static CommandFailure badValue(String message) {
        return new CommandFailure(2, "BadValue", message);
    }
}

final class AuthBackend extends MemoryBackend {
    private static final Logger log = LoggerFactory.getLogger("MongoAuthServer");
    private static final AttributeKey<ConnState> STATE = AttributeKey.valueOf("mongo-auth-state");
    private static final SecureRandom RANDOM = new SecureRandom();
    /** true while a command that arrived as OP_MSG is handled (else it came as legacy OP_QUERY). */
    private static final ThreadLocal<Boolean> VIA_OP_MSG = ThreadLocal.withInitial(() -> false);

    /** Commands mongod answers on a connection that has not authenticated (the ones drivers send). */
    private static final Set<String> NO_AUTH_NEEDED = Set.of(
        "hello", "isMaster", "ismaster", "buildInfo", "buildinfo", "saslStart", "saslContinue",
        "authenticate", "logout", "ping", "endSessions", "connectionStatus", "whatsmyuri");

    private final Map<UserKey, User> users;
    private final boolean speculative;
    private final boolean logCommands;

    AuthBackend(Map<UserKey, User> users, boolean speculative, boolean logCommands) {
        this.users = users;
        this.speculative = speculative;
        this.logCommands = logCommands;
    }

    private static ConnState state(Channel channel) {
        ConnState s = channel.attr(STATE).get();
        if (s == null) {
            ConnState fresh = new ConnState();
            s = channel.attr(STATE).setIfAbsent(fresh);
            if (s == null) {
                s = fresh;
            }
        }
        return s;
    }

    static Document error(int code, String codeName, String message) {
        Document d = new Document();
        d.put("ok", 0.0);
        d.put("errmsg", message);
        d.put("code", code);
        d.put("codeName", codeName);
        return d;
    }

    private static Document error(CommandFailure f) {
        return error(f.code, f.codeName, f.getMessage());
    }

    @Override
    public Document handleCommand(Channel channel, String db, String command, Document query) {
        ConnState st = state(channel);
        synchronized (st) {
            if (logCommands) {
                log.info("command {} db={} via {} from {} as {}", command, db, VIA_OP_MSG.get() ? "OP_MSG" : "OP_QUERY",
                    channel.remoteAddress(), st.authenticated.isEmpty() ? "(unauthenticated)" : st.authenticated.values());
            }
            switch (command) {
                case "hello":
                case "isMaster":
                case "ismaster":
                    return handshake(channel, st, db, command, query);
                case "saslStart":
                    try {
                        return saslStart(channel, st, db, query, false);
                    } catch (CommandFailure f) {
                        return error(f);
                    }
                case "saslContinue":
                    try {
                        return saslContinue(channel, st, db, query);
                    } catch (CommandFailure f) {
                        return error(f);
                    }
                case "authenticate":
                    return error(334, "MechanismUnavailable", "Received authentication for mechanism "
                        + query.get("mechanism") + " which is not enabled");
                case "logout":
                    st.authenticated.keySet().removeIf(k -> k.db().equals(db));
                    return ok(new Document());
                case "connectionStatus":
                    return connectionStatus(st);
                default:
                    break;
            }
            if (!NO_AUTH_NEEDED.contains(command)) {
                String denied = authorize(st, db, command, query);
                if (denied != null) {
                    log.info("refused command {} db={} from {}: {}", command, db, channel.remoteAddress(),
                        st.authenticated.isEmpty() ? "not authenticated" : "not authorized for " + st.authenticated.values());
                    return error(13, "Unauthorized", denied);
                }
            }
            if (command.equalsIgnoreCase("serverStatus")) {
                return super.getServerStatus();
            }
            Document reply = super.handleCommand(channel, db, command, query);
            if (command.equalsIgnoreCase("listDatabases")) {
                restrictDatabaseList(st, reply);
            }
            return reply;
        }
    }

    @Override
    public Document handleMessage(MongoMessage message) {
        VIA_OP_MSG.set(true);
        try {
            return super.handleMessage(message);
        } finally {
            VIA_OP_MSG.set(false);
        }
    }

    /** Legacy OP_QUERY on a collection (not $cmd): the library cannot reply with an error document here. */
    @Override
    public QueryResult handleQuery(MongoQuery query) {
        ConnState st = state(query.getChannel());
        String denied;
        synchronized (st) {
            denied = authorize(st, query.getDatabaseName(), "find", new Document("find", query.getCollectionName()));
        }
        if (denied != null) {
            throw new MongoServerError(13, "Unauthorized", denied);
        }
        return super.handleQuery(query);
    }

    /**
     * Only reached when a client sends serverStatus as a legacy OP_QUERY: MongoDatabaseHandler answers
     * that itself without passing the connection, so it cannot be authorized and is refused.
     * (serverStatus over OP_MSG goes through handleCommand, which calls super.getServerStatus().)
     */
    @Override
    public Document getServerStatus() {
        return error(13, "Unauthorized", "command serverStatus requires authentication");
    }

    // ---- authorization --------------------------------------------------------------------

    /** null if allowed, else mongod's style of message. */
    private static String authorize(ConnState st, String db, String command, Document query) {
        if (st.authenticated.isEmpty()) {
            return "command " + command + " requires authentication";
        }
        List<Grant> grants = new ArrayList<>();
        for (User u : st.authenticated.values()) {
            grants.addAll(u.grants);
        }
        boolean allowed;
        if (command.equalsIgnoreCase("listDatabases")) {
            allowed = true; // like mongod: lists only the databases the user has privileges on
        } else if (command.equalsIgnoreCase("renameCollection") && db.equals("admin")) {
            allowed = canWrite(grants, dbOf(query.get("renameCollection"))) && canWrite(grants, dbOf(query.get("to")));
        } else if (command.equalsIgnoreCase("dropDatabase")) {
            allowed = grants.stream().anyMatch(g -> g.isOwnerOf(db));
        } else {
            allowed = canWrite(grants, db);
        }
        if (allowed) {
            return null;
        }
        return "not authorized on " + db + " to execute command { " + command + ": "
            + describe(query.get(command)) + ", $db: \"" + db + "\" }";
    }

    private static boolean canWrite(List<Grant> grants, String db) {
        return db != null && grants.stream().anyMatch(g -> g.coversWrite(db));
    }

    private static String dbOf(Object namespace) {
        if (!(namespace instanceof String ns) || ns.indexOf('.') <= 0) {
            return null;
        }
        return ns.substring(0, ns.indexOf('.'));
    }

    private static String describe(Object v) {
        if (v instanceof String s) {
            return "\"" + s + "\"";
        }
        return String.valueOf(v);
    }

    private static void restrictDatabaseList(ConnState st, Document reply) {
        if (st.authenticated.values().stream().anyMatch(User::anyDatabase)) {
            return;
        }
        Object list = reply.get("databases");
        if (list instanceof List<?> dbs) {
            List<Object> kept = new ArrayList<>();
            for (Object o : dbs) {
                if (o instanceof Document d) {
                    String name = String.valueOf(d.get("name"));
                    boolean visible = st.authenticated.values().stream()
                        .flatMap(u -> u.grants.stream())
                        .anyMatch(g -> g.coversWrite(name));
                    if (visible) {
                        kept.add(d);
                    }
                }
            }
            reply.put("databases", kept);
        }
    }

    private static Document connectionStatus(ConnState st) {
        List<Document> users = new ArrayList<>();
        List<Document> roles = new ArrayList<>();
        for (User u : st.authenticated.values()) {
            users.add(new Document("user", u.name).append("db", u.db));
            for (Grant g : u.grants) {
                roles.add(new Document("role", g.role()).append("db", g.db() == null ? "admin" : g.db()));
            }
        }
        Document authInfo = new Document("authenticatedUsers", users).append("authenticatedUserRoles", roles);
        return ok(new Document("authInfo", authInfo));
    }

    private static Document ok(Document d) {
        d.put("ok", 1.0);
        return d;
    }

    // ---- handshake ----------------------------------------------------------------------

    private Document handshake(Channel channel, ConnState st, String db, String command, Document query) {
        Document base = super.handleCommand(channel, db, "isMaster", query);
        Document reply;
        if (command.equals("hello")) {
            reply = new Document("isWritablePrimary", true);
            for (Map.Entry<String, Object> e : base.entrySet()) {
                if (!e.getKey().equals("ismaster")) {
                    reply.put(e.getKey(), e.getValue());
                }
            }
        } else {
            reply = base;
        }
        if (isTrue(query.get("helloOk"))) {
            reply.put("helloOk", true);
        }
        // saslSupportedMechs: "db.user" -> the mechanisms that user can use (drivers pick SCRAM-SHA-256 from it)
        if (query.get("saslSupportedMechs") instanceof String s && s.indexOf('.') > 0) {
            User u = users.get(new UserKey(s.substring(0, s.indexOf('.')), s.substring(s.indexOf('.') + 1)));
            if (u != null) {
                List<String> mechs = new ArrayList<>();
                for (Mechanism m : u.credentials.keySet()) {
                    mechs.add(m.wireName);
                }
                reply.put("saslSupportedMechs", mechs);
            }
        }
        if (query.containsKey("saslSupportedMechs") || query.containsKey("speculativeAuthenticate")) {
            Object spec = query.get("speculativeAuthenticate");
            log.info("handshake {} via {} from {}: saslSupportedMechs={} speculativeAuthenticate={}",
                command, VIA_OP_MSG.get() ? "OP_MSG" : "OP_QUERY", channel.remoteAddress(), query.get("saslSupportedMechs"),
                spec instanceof Document d ? d.get("mechanism") + "@" + d.get("db") : "none");
        }
        if (query.get("speculativeAuthenticate") instanceof Document spec) {
            if (speculative && spec.containsKey("saslStart") && spec.get("db") instanceof String specDb) {
                try {
                    Document r = saslStart(channel, st, specDb, spec, true);
                    r.remove("ok");
                    reply.put("speculativeAuthenticate", r);
                } catch (CommandFailure f) {
                    // like mongod: leave the field out; the driver then runs saslStart and gets the error
                    log.info("speculative authentication not started: {}", f.getMessage());
                }
            } else {
                log.info("ignoring speculativeAuthenticate in {} from {}", command, channel.remoteAddress());
            }
        }
        return reply;
    }

    private static boolean isTrue(Object v) {
        return Boolean.TRUE.equals(v) || (v instanceof Number n && n.doubleValue() != 0);
    }

    // ---- SCRAM ----------------------------------------------------------------------------

    private static byte[] payloadBytes(Object payload) throws CommandFailure {
        if (payload instanceof BinData b) {
            return b.getData();
        }
        if (payload instanceof byte[] b) {
            return b;
        }
        if (payload instanceof String s) {
            return s.getBytes(StandardCharsets.UTF_8);
        }
        throw CommandFailure.badValue("payload must be binary");
    }

    /** Splits "k=v,k=v" SCRAM attributes, keeping order. */
    private static List<String[]> attributes(String msg) throws CommandFailure {
        List<String[]> out = new ArrayList<>();
        for (String part : msg.split(",", -1)) {
            if (part.length() < 2 || part.charAt(1) != '=') {
                throw CommandFailure.badValue("malformed SCRAM message");
            }
            out.add(new String[] {part.substring(0, 1), part.substring(2)});
        }
        return out;
    }

    private static String unescapeSaslName(String s) throws CommandFailure {
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c == '=') {
                if (s.startsWith("=2C", i)) {
                    sb.append(',');
                } else if (s.startsWith("=3D", i)) {
                    sb.append('=');
                } else {
                    throw CommandFailure.badValue("malformed SCRAM user name");
                }
                i += 2;
            } else {
                sb.append(c);
            }
        }
        return sb.toString();
    }

    private Document saslStart(Channel channel, ConnState st, String db, Document cmd, boolean inHandshake) throws CommandFailure {
        Object mechName = cmd.get("mechanism");
        Mechanism m = Mechanism.byWireName(String.valueOf(mechName));
        if (m == null) {
            throw new CommandFailure(334, "MechanismUnavailable",
                "Received authentication for mechanism " + mechName + " which is not enabled");
        }
        String clientFirst = new String(payloadBytes(cmd.get("payload")), StandardCharsets.UTF_8);
        // gs2-header = cbind-flag "," [ authzid ] ","
        int c1 = clientFirst.indexOf(',');
        int c2 = c1 < 0 ? -1 : clientFirst.indexOf(',', c1 + 1);
        if (c2 < 0) {
            throw CommandFailure.badValue("malformed SCRAM client-first message");
        }
        String flag = clientFirst.substring(0, c1);
        if (!flag.equals("n") && !flag.equals("y")) {
            throw CommandFailure.badValue("SCRAM channel binding is not supported");
        }
        String gs2Header = clientFirst.substring(0, c2 + 1);
        String authzid = clientFirst.substring(c1 + 1, c2);
        String bare = clientFirst.substring(c2 + 1);
        List<String[]> attrs = attributes(bare);
        if (attrs.size() < 2 || !attrs.get(0)[0].equals("n") || !attrs.get(1)[0].equals("r")) {
            throw CommandFailure.badValue("malformed SCRAM client-first message");
        }
        String userName = unescapeSaslName(attrs.get(0)[1]);
        String clientNonce = attrs.get(1)[1];
        if (clientNonce.isEmpty() || !clientNonce.chars().allMatch(ch -> ch > 0x20 && ch < 0x7f && ch != ',')) {
            throw CommandFailure.badValue("malformed SCRAM client nonce");
        }
        if (!authzid.isEmpty() && !authzid.equals("a=" + attrs.get(0)[1])) {
            throw CommandFailure.badValue("SCRAM authorization identity must be the user name");
        }
        User user = users.get(new UserKey(db, userName));
        if (user == null || !user.credentials.containsKey(m)) {
            log.info("authentication failed: mechanism={} user={}@{} client={} reason=unknown user",
                m.wireName, userName, db, channel.remoteAddress());
            throw CommandFailure.authenticationFailed();
        }
        byte[] sn = new byte[24];
        RANDOM.nextBytes(sn);
        String nonce = clientNonce + Base64.getEncoder().encodeToString(sn);
        Credential c = user.credentials.get(m);
        String serverFirst = "r=" + nonce + ",s=" + Base64.getEncoder().encodeToString(c.salt()) + ",i=" + c.iterations();
        boolean skipEmpty = cmd.get("options") instanceof Document o && isTrue(o.get("skipEmptyExchange"));
        int id = st.nextConversationId++;
        st.conversations.put(id, new Conversation(id, db, user, m, gs2Header, bare, serverFirst, nonce, skipEmpty));
        log.info("saslStart{}: mechanism={} user={} skipEmptyExchange={} client={}",
            inHandshake ? " (speculative, in the handshake)" : "", m.wireName, user, skipEmpty,
            channel.remoteAddress());
        Document reply = new Document("conversationId", id);
        reply.put("done", false);
        reply.put("payload", new BinData(serverFirst.getBytes(StandardCharsets.UTF_8)));
        return ok(reply);
    }

    private Document saslContinue(Channel channel, ConnState st, String db, Document cmd) throws CommandFailure {
        if (!(cmd.get("conversationId") instanceof Number idNum)) {
            throw new CommandFailure(17, "ProtocolError", "saslContinue needs a conversationId");
        }
        int id = idNum.intValue();
        Conversation cv = st.conversations.get(id);
        if (cv == null) {
            throw new CommandFailure(17, "ProtocolError", "No SASL session state found");
        }
        if (!cv.db.equals(db)) {
            st.conversations.remove(id);
            throw new CommandFailure(17, "ProtocolError", "saslContinue must be sent to the database of saslStart ("
                + cv.db + ")");
        }
        byte[] payload = payloadBytes(cmd.get("payload"));
        if (cv.proofVerified) {
            // the optional empty round after the server-final message
            st.conversations.remove(id);
            return finish(channel, st, cv, new byte[0]);
        }
        st.conversations.remove(id); // any failure below ends the conversation
        String clientFinal = new String(payload, StandardCharsets.UTF_8);
        int p = clientFinal.lastIndexOf(",p=");
        if (p < 0) {
            throw CommandFailure.badValue("malformed SCRAM client-final message");
        }
        String withoutProof = clientFinal.substring(0, p);
        List<String[]> attrs = attributes(withoutProof);
        if (attrs.size() < 2 || !attrs.get(0)[0].equals("c") || !attrs.get(1)[0].equals("r")) {
            throw CommandFailure.badValue("malformed SCRAM client-final message");
        }
        String expectedBinding = Base64.getEncoder().encodeToString(cv.gs2Header.getBytes(StandardCharsets.UTF_8));
        if (!attrs.get(0)[1].equals(expectedBinding) || !attrs.get(1)[1].equals(cv.nonce)) {
            log.info("authentication failed: mechanism={} user={} client={} reason=channel binding or nonce mismatch",
                cv.mechanism.wireName, cv.user, channel.remoteAddress());
            throw CommandFailure.authenticationFailed();
        }
        byte[] proof;
        try {
            proof = Base64.getDecoder().decode(clientFinal.substring(p + 3));
        } catch (IllegalArgumentException e) {
            throw CommandFailure.badValue("malformed SCRAM client proof");
        }
        String authMessage = cv.clientFirstBare + "," + cv.serverFirst + "," + withoutProof;
        Credential c = cv.credential;
        byte[] clientSignature = Scram.hmac(cv.mechanism, c.storedKey(), authMessage);
        if (proof.length != clientSignature.length) {
            throw CommandFailure.authenticationFailed();
        }
        byte[] clientKey = new byte[proof.length];
        for (int i = 0; i < proof.length; i++) {
            clientKey[i] = (byte) (proof[i] ^ clientSignature[i]);
        }
        if (!MessageDigest.isEqual(Scram.hash(cv.mechanism, clientKey), c.storedKey())) {
            log.info("authentication failed: mechanism={} user={} client={} reason=wrong password",
                cv.mechanism.wireName, cv.user, channel.remoteAddress());
            throw CommandFailure.authenticationFailed();
        }
        byte[] serverSignature = Scram.hmac(cv.mechanism, c.serverKey(), authMessage);
        byte[] serverFinal = ("v=" + Base64.getEncoder().encodeToString(serverSignature)).getBytes(StandardCharsets.UTF_8);
        if (cv.skipEmptyExchange) {
            return finish(channel, st, cv, serverFinal);
        }
        cv.proofVerified = true;
        st.conversations.put(id, cv);
        Document reply = new Document("conversationId", id);
        reply.put("done", false);
        reply.put("payload", new BinData(serverFinal));
        return ok(reply);
    }

    private static Document finish(Channel channel, ConnState st, Conversation cv, byte[] payload) {
        st.authenticated.put(new UserKey(cv.user.db, cv.user.name), cv.user);
        log.info("authenticated: mechanism={} user={} client={}", cv.mechanism.wireName, cv.user, channel.remoteAddress());
        Document reply = new Document("conversationId", cv.id);
        reply.put("done", true);
        reply.put("payload", new BinData(payload));
        return ok(reply);
    }
}
